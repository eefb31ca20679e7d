"""Assets of group `market`: market_data and features (filled in by the data layer work)."""

ASSETS: list = []
CHECKS: list = []

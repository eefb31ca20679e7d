"""Assets of group `studies`: hpo_study (budget x horizon partitions)."""

ASSETS: list = []
CHECKS: list = []

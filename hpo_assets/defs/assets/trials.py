"""Assets of group `analysis` built on the one trial table: imported_studies, trial_table, hpo_summary, diverged_analysis."""

ASSETS: list = []
CHECKS: list = []

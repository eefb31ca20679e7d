"""hpo-assets: Optuna studies of transformer forecasters across parameter budgets, as Dagster assets."""

import os

# Idle OpenMP threads sleep instead of spinning when other processes share the cores (training beside the
# UI, an analysis or another study); OpenMP reads this once, when torch loads it, so it is set here, on the
# first import of the package, and never over the user's own setting. See training/cpu_share.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

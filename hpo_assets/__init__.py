"""hpo-assets: Optuna studies of transformer forecasters across parameter budgets, as Dagster assets."""

__version__ = "0.1.0"

"""Analysis of the one trial table: coverage and waste, importance, scaling verdict, HP consistency, report.

A plain library (polars, numpy, scipy, scikit-learn, Optuna's importance evaluators' numbers, matplotlib):
no Dagster, no torch. The Dagster assets and `hpo-assets analyze` both call it.
"""

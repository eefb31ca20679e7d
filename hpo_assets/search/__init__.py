"""The search library (no Dagster): a finite space per budget, forced extremes, TPE steered away from
repeats, honest trial recording, resumable runs, and where studies are stored.

Entry point: `runner.run_study(space, trainer, study_name=..., storage=..., options=StudyOptions(...))`.
"""

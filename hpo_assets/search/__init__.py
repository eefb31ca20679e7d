"""The search library (no Dagster): study settings, a finite space per budget, forced extremes, TPE steered
away from repeats, honest trial recording, resumable runs, and where studies are stored.

Entry point: `build.build_study(settings, "2M|h1", data, storage=...)` returns a `StudyRunner`; its
`run()` calls `runner.run_study(space, trainer, study_name=..., storage=..., options=StudyOptions(...))`,
which tests and notebooks may also drive directly.
"""

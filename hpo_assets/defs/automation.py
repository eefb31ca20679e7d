"""Declarative automation of the analysis: what makes an asset re-materialize on its own (the instance's
automation sensor evaluates these; `hpo-assets init-instance` turns it on)."""

import dagster as dg

AC = dg.AutomationCondition
_BUSY = AC.will_be_requested() | AC.in_progress()

# eager(), except that missing upstream partitions do not block it: most budget x horizon partitions of
# hpo_study / calibrated_model / importance_report are never materialized, and eager() waits for every one.
EAGER_PARTIAL_UPSTREAM = (
    AC.in_latest_time_window()
    & (AC.newly_missing() | AC.any_deps_updated()).since_last_handled()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
).with_label("eager (missing upstream partitions allowed)")
EAGER = AC.eager()


def _pending_where(asset: str, trigger: str) -> dg.AutomationCondition:
    """`trigger` updated since this partition last ran, and its `asset` partition is materialized."""
    has = AC.any_deps_match(~AC.missing()).allow(dg.AssetSelection.assets(asset))
    updated = AC.any_deps_updated().allow(dg.AssetSelection.assets(trigger))
    return (updated & has).since_last_handled()


# importance_report: the importance of a budget x horizon with no study is not worth a run (partitions with
# only imported studies come from the nightly schedule, `importance_job` or `hpo-assets demo`).
IMPORTANCE_PENDING = _pending_where("hpo_study", "trial_table")
EAGER_WHERE_STUDY = (
    AC.in_latest_time_window() & IMPORTANCE_PENDING & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("eager on trial_table, only where hpo_study is materialized")

# The report, once per cascade: a new study updates the table, then (another run, another partitions
# definition) the importance partitions, then their summary. Eager alone builds the report with the table's
# run and again after the summary. This waits while the analysis upstream of a dependency (the table, the
# importance partitions) is requested, pending or running, so the report is built with the last of its
# inputs. A study or a model training for hours does not hold it back (only the analysis groups count).
# (will_be_requested alone cannot see the importance partitions: Dagster only reports it for assets that
# would run in the same run, and another partitions definition never does.)
_ANALYSIS = dg.AssetSelection.groups("trials", "analysis")
ONCE_UPSTREAM_SETTLED = (
    EAGER_PARTIAL_UPSTREAM
    & ~AC.any_deps_match(AC.any_deps_match(_BUSY | IMPORTANCE_PENDING).allow(_ANALYSIS))
).with_label("eager, once the analysis upstream has settled")

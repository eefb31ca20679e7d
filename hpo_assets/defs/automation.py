"""Declarative automation of the analysis: what makes an asset re-materialize on its own (the instance's
automation sensor evaluates these; `hpo-assets init-instance` turns it on)."""

import dagster as dg

# eager(), except that missing upstream partitions do not block it: most budget x horizon partitions of
# hpo_study / importance_report are never materialized, and eager() waits for every one of them.
EAGER_PARTIAL_UPSTREAM = (
    dg.AutomationCondition.in_latest_time_window()
    & (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager (missing upstream partitions allowed)")
EAGER = dg.AutomationCondition.eager()

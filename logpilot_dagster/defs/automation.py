"""When the automation sensor may run the assets downstream of the bootstrap."""

import dagster as dg

A = dg.AutomationCondition


def after_checks_when_inputs_change() -> dg.AutomationCondition:
    """Like `eager()`, but triggered by a changed data version of a dependency, not by any new materialization
    (a replayed year that loaded the same data changes nothing); never while a dependency's run (its blocking
    check included) is in progress, and only with the dependencies' blocking checks passed. History is sparse:
    years without landing files are never materialized, so one materialized year is enough (`eager()` waits
    for every year)."""
    return (
        A.in_latest_time_window()
        & (A.newly_missing() | A.any_deps_match(A.data_version_changed())).since_last_handled()
        & A.any_deps_match(~A.missing())
        & A.all_deps_blocking_checks_passed()
        & ~A.any_deps_in_progress()
        & ~A.in_progress()
    ).with_label("after checks, when inputs change")

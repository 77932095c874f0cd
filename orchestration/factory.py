"""One function builds a use case's Dagster definitions: its assets (dataset -> grid ->
selection -> registration -> serving) and checks, its job and its weekly schedule. The
definitions of the code location merge one per use case (orchestration/definitions.py)."""

from collections.abc import Sequence

import dagster as dg

from orchestration.assets.selection import baseline_gate_check
from orchestration.use_case import UseCase


def pipeline_job_name(use_case: UseCase) -> str:
    return f"{use_case.name}_pipeline"


def weekly_schedule(use_case: UseCase, job) -> dg.ScheduleDefinition:
    """Weekly retraining; off until turned on in the UI (Automation tab)."""
    return dg.ScheduleDefinition(
        name=f"weekly_{use_case.name}",
        job=job,
        cron_schedule=use_case.schedule_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=use_case.schedule_description,
    )


def use_case_definitions(
    use_case: UseCase,
    *,
    assets: Sequence[dg.AssetsDefinition],
    asset_checks: Sequence[dg.AssetChecksDefinition],
    sensors: Sequence[dg.SensorDefinition] = (),
) -> dg.Definitions:
    """The use case's assets (in its group) and checks, the blocking gate on its selection, the
    job that materializes the group, and its weekly schedule."""
    job = dg.define_asset_job(
        pipeline_job_name(use_case),
        selection=dg.AssetSelection.groups(use_case.name),
        description=use_case.job_description,
    )
    return dg.Definitions(
        # The use case's group is set here, once, for every asset it has.
        assets=dg.map_asset_specs(
            lambda spec: spec.replace_attributes(group_name=use_case.name), assets
        ),
        asset_checks=[baseline_gate_check(use_case), *asset_checks],
        jobs=[job],
        schedules=[weekly_schedule(use_case, job)],
        sensors=sensors,
    )

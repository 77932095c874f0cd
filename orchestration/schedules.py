"""Weekly retraining of the whole graph; off until turned on in the UI (Automation tab)."""

import dagster as dg

from orchestration.jobs import next_track_job

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=next_track_job,
    cron_schedule="0 4 * * 1",  # Mondays 04:00 UTC
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-ingest the default source ($NEXT_TRACK_SOURCE, else synthetic), rebuild the "
    "dbt models, retrain, evaluate and register.",
)

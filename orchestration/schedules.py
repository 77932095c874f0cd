"""Weekly retraining, Monday night; off until turned on in the UI (Automation tab)."""

import dagster as dg

from orchestration.jobs import next_track_job, user_items_job

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=next_track_job,
    cron_schedule="0 4 * * 1",  # Mondays 04:00 UTC
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-ingest the default source ($NEXT_TRACK_SOURCE, else synthetic), rebuild the "
    "dbt models, retrain, evaluate, register, refresh track_recommendations.",
)
weekly_user_items_schedule = dg.ScheduleDefinition(
    name="weekly_user_items",
    job=user_items_job,
    cron_schedule="0 5 * * 1",  # Mondays 05:00 UTC, after the next-track run
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-ingest the interactions (run config raw_interactions.source; default: the "
    "published playlist rows), rebuild, retrain, register, refresh user_recommendations.",
)

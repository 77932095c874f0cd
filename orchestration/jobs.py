import dagster as dg

next_track_job = dg.define_asset_job(
    "next_track_pipeline",
    selection=dg.AssetSelection.groups("next_track"),
    description="next-track: ingest, dbt build (write-audit-publish), the candidate grid, "
    "selection, test, registration.",
)

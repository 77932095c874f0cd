import dagster as dg

next_track_job = dg.define_asset_job(
    "next_track_pipeline",
    selection=dg.AssetSelection.groups("next_track"),
    description="next-track: ingest, dbt build (write-audit-publish), the candidate grid, "
    "selection, test, registration, the track_recommendations table.",
)
user_items_job = dg.define_asset_job(
    "user_items_pipeline",
    selection=dg.AssetSelection.groups("user_items"),
    description="user-items: ingest interactions, dbt build, the candidate grid (two-tower, "
    "EASE, item-kNN, popularity), selection, test, registration, the user_recommendations table.",
)

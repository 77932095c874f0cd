import dagster as dg

full_pipeline_job = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest, dbt build, and everything downstream.",
)

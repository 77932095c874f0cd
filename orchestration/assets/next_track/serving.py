"""track_recommendations: the next-track champion's top-K next tracks for every track, as a
DuckDB table for lookups; its dbt source tests run as the asset's check."""

import dagster as dg
from dagster_dbt import DbtCliResource

from ml.serving.batch import NEXT_TRACK_SCHEMA, most_played, next_track_batches
from orchestration.assets.champion_tables import champion_bundle, dbt_source_tests, serving_table
from orchestration.assets.next_track.registry import MODEL_NAME, next_track_registered_model
from orchestration.config import TrackTableConfig
from orchestration.resources import MlflowResource
from orchestration.settings import WAREHOUSE_KEY
from orchestration.storage import RunStorage, run_key

TABLE = "track_recommendations"


@dg.asset(
    deps=[next_track_registered_model],
    kinds={"duckdb"},
    description="The champion's top-K next tracks for each of the most-played tracks of its "
    "catalogue (a playlist of that one track; all of them up to max_tracks), in "
    "serving/track_recommendations.duckdb in the run store, indexed by track_key.",
)
def track_recommendations(
    context: dg.AssetExecutionContext,
    config: TrackTableConfig,
    mlflow: MlflowResource,
    storage: RunStorage,
) -> dg.MaterializeResult:
    run_id = context.run.run_id
    bundle, built_from = champion_bundle(
        mlflow, MODEL_NAME, storage.writable(run_key(run_id, "champion"))
    )
    plays = bundle.popularity.counts
    tracks = most_played(bundle.popularity, config.max_tracks)
    share = float(plays[tracks].sum() / max(plays.sum(), 1))
    if len(tracks) < len(plays):
        context.log.info(
            f"tabling the {len(tracks):,} most-played of {len(plays):,} tracks ({share:.1%} of "
            "train plays; max_tracks); the others are served live by the model"
        )
    return serving_table(
        storage,
        run_id,
        TABLE,
        next_track_batches(bundle, tracks, config.k, config.batch, context.log.info),
        NEXT_TRACK_SCHEMA,
        "track_key",
        bundle.catalogue.keys.take(tracks).to_pylist(),
        "tracks",
        built_from,
        config.k,
        {"catalogue_tracks": len(plays), "share_of_train_plays": share},
    )


@dg.asset_check(asset=track_recommendations, blocking=False)
def track_recommendations_dbt_tests(
    dbt: DbtCliResource, storage: RunStorage
) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows per track, ranks 1..k, never the track itself,
    every recommended track in dim_tracks), run right after it was written."""
    return dbt_source_tests(dbt, storage, "serving_next_track", TABLE, WAREHOUSE_KEY)

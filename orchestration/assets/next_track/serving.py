"""track_recommendations: the next-track champion's top-K next tracks for every track, as a
DuckDB table for lookups; its dbt source tests run as the asset's check."""

import dagster as dg
from dagster_dbt import DbtCliResource
from mlflow.entities.model_registry import ModelVersion

from ml.registry import code_fingerprint, current_champion
from ml.serving.batch import (
    NEXT_TRACK_SCHEMA,
    built_from_values,
    most_played,
    next_track_batches,
)
from orchestration.assets.champion_tables import champion_bundle, dbt_source_tests, serving_table
from orchestration.assets.next_track.registry import MODEL_NAME, next_track_registered_model
from orchestration.config import TrackTableConfig
from orchestration.lineage import latest_materialization
from orchestration.resources import MlflowResource
from orchestration.settings import SERVING_FOLDER, WAREHOUSE_KEY, WORKER_NAME
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
    champion = current_champion(mlflow.client(), MODEL_NAME)
    scoring_code = code_fingerprint()
    kept = kept_table(context, config, champion, scoring_code, storage)
    if kept is not None:
        return kept
    run_id = context.run.run_id
    bundle, built_from = champion_bundle(
        mlflow, MODEL_NAME, champion, storage.writable(run_key(run_id, "champion"))
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
        {
            "catalogue_tracks": len(plays),
            "share_of_train_plays": share,
            "max_tracks": config.max_tracks,
            "champion_run_id": champion.run_id,
            "scoring_code": scoring_code,
        },
    )


def kept_table(
    context: dg.AssetExecutionContext,
    config: TrackTableConfig,
    champion: ModelVersion | None,
    scoring_code: str,
    storage: RunStorage,
) -> dg.MaterializeResult | None:
    """The last materialization again, when nothing the table depends on changed: the
    ``champion`` (its version and MLflow run), ``k``, ``max_tracks``, the ml package's code that
    scores it (``scoring_code``, its ``code_fingerprint``), and the published file, still the
    one that materialization wrote (its rows and the version every row names). A retrain that
    was not promoted does not score it again. None when any of these differs."""
    latest = latest_materialization(context.instance, context.asset_key)
    if latest is None or champion is None:
        return None
    last_run, before = latest
    published = f"{SERVING_FOLDER}/{TABLE}.duckdb"
    now = {
        "champion_version": str(champion.version),
        "champion_run_id": champion.run_id,
        "k": config.k,
        "max_tracks": config.max_tracks,
        "scoring_code": scoring_code,
        "path": storage.location(published),
    }
    if any(before.get(key) != value for key, value in now.items()):
        return None
    if not storage.exists(published):
        return None
    rows, versions = built_from_values(storage.stage(published), TABLE, "model_version")
    if rows != before["dagster/row_count"] or versions != [now["champion_version"]]:
        return None
    built_in = before.get("kept_from_run", last_run)
    context.log.info(
        f"kept the table run {built_in} built from champion version "
        f"{before['champion_version']}: the champion, k, max_tracks and the scoring code are "
        "the same"
    )
    # The build's own figures (its time, lookup latency, worker) are not this run's.
    stale = {"build_seconds", "lookup_ms_p50", "worker"}
    metadata = {key: value for key, value in before.items() if key not in stale}
    return dg.MaterializeResult(
        metadata={**metadata, "kept_from_run": built_in, "worker": WORKER_NAME}
    )


@dg.asset_check(asset=track_recommendations, blocking=False)
def track_recommendations_dbt_tests(
    dbt: DbtCliResource, storage: RunStorage
) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows per track, ranks 1..k, never the track itself,
    every recommended track in dim_tracks), run right after it was written."""
    return dbt_source_tests(dbt, storage, "serving_next_track", TABLE, WAREHOUSE_KEY)

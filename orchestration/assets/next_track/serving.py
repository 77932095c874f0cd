"""track_recommendations: the next-track champion's top-K next tracks for every track, as a
DuckDB table for lookups; its dbt source tests run as the asset's check."""

import time
from pathlib import Path

import dagster as dg
import mlflow as mlflow_lib
from dagster_dbt import DbtCliResource

from ml.registry import current_champion
from ml.serving.batch import NEXT_TRACK_SCHEMA, lookup_ms, next_track_batches, write_table
from ml.serving.bundle import load_bundle
from orchestration.assets.next_track.registry import MODEL_NAME, registered_model
from orchestration.config import ServingTableConfig
from orchestration.project import dbt_project
from orchestration.resources import MlflowResource, RunStore
from orchestration.settings import SERVING_DIR

TABLE = "track_recommendations"


def champion_bundle(mlflow: MlflowResource, model_name: str, into: Path):
    """The current champion's bundle, downloaded from the registry; (bundle, version)."""
    champion = current_champion(mlflow.client(), model_name)
    if champion is None:
        raise dg.Failure(f"no {model_name} champion registered yet", allow_retries=False)
    local = mlflow_lib.artifacts.download_artifacts(
        f"models:/{model_name}/{champion.version}",
        dst_path=str(into),
        tracking_uri=mlflow.tracking_uri,
    )
    return load_bundle(Path(local) / "artifacts" / "bundle"), champion.version


@dg.asset(
    deps=[registered_model],
    group_name="next_track",
    kinds={"duckdb"},
    description="The champion's top-K next tracks for every track of its catalogue (a playlist of "
    "that one track), in data/serving/track_recommendations.duckdb, indexed by track_key.",
)
def track_recommendations(
    context: dg.AssetExecutionContext,
    config: ServingTableConfig,
    mlflow: MlflowResource,
    run_store: RunStore,
) -> dg.MaterializeResult:
    into = run_store.run_dir(context.run.run_id) / "champion"
    bundle, version = champion_bundle(mlflow, MODEL_NAME, into)
    path = SERVING_DIR / f"{TABLE}.duckdb"
    started = time.perf_counter()
    rows = write_table(
        path,
        TABLE,
        next_track_batches(bundle, config.k, config.batch, context.log.info),
        NEXT_TRACK_SCHEMA,
        "track_key",
    )
    seconds = time.perf_counter() - started
    sample = bundle.catalogue.key_list()[:200]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "tracks": len(bundle.catalogue),
            "k": config.k,
            "champion_version": version,
            "build_seconds": seconds,
            "lookup_ms_p50": lookup_ms(path, TABLE, "track_key", sample),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset_check(asset=track_recommendations, blocking=False)
def track_recommendations_dbt_tests(dbt: DbtCliResource) -> dg.AssetCheckResult:
    """The dbt source tests of the table (k rows per track, ranks 1..k, never the track itself,
    every recommended track in dim_tracks), run right after it was written."""
    return dbt_source_tests(dbt, "serving_next_track")


def dbt_source_tests(dbt: DbtCliResource, source: str) -> dg.AssetCheckResult:
    invocation = dbt.cli(
        ["test", "--select", f"source:{source}"],
        manifest=dbt_project.manifest_path,
        raise_on_error=False,
    )
    invocation.wait()
    results = [
        r
        for r in invocation.get_artifact("run_results.json")["results"]
        if r["unique_id"].startswith("test.")
    ]
    failed = [
        f"{r['unique_id'].split('.')[-1]}: {r.get('message') or r['status']}"
        for r in results
        if r["status"] != "pass"
    ]
    return dg.AssetCheckResult(
        passed=bool(results) and not failed,
        metadata={"tests": len(results), "failed": dg.MetadataValue.json(failed)},
        description=f"{len(results) - len(failed)}/{len(results)} dbt tests passed"
        + (f"; failed: {'; '.join(failed)}" if failed else ""),
    )

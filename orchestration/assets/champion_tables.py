"""What both serving tables (track_recommendations, user_recommendations) share: the current
champion's bundle from the registry, writing the table with its figures, and their dbt source
tests run as an asset check."""

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg
import mlflow as mlflow_lib
import pyarrow as pa
from dagster_dbt import DbtCliResource
from mlflow.entities.model_registry import ModelVersion

from ml.serving.batch import lookup_ms, write_table
from ml.serving.bundle import Bundle, load_bundle
from orchestration.assets.dbt import environment, failure_line, remove_target
from orchestration.metadata import for_display
from orchestration.project import dbt_project
from orchestration.resources import MlflowResource
from orchestration.settings import SERVING_FOLDER, WORKER_NAME
from orchestration.storage import RunStorage, run_key

LOOKUP_SAMPLE = 200  # keys whose lookups give the median latency


@dataclass(frozen=True)
class BuiltFrom:
    """The registered model a serving table was built from: a column each on every row."""

    model_name: str
    model_version: str
    data_fingerprint: str


def champion_bundle(
    mlflow: MlflowResource, model_name: str, champion: ModelVersion | None, into: Path
) -> tuple[Bundle, BuiltFrom]:
    """The ``champion``'s bundle (``current_champion``'s), downloaded from the registry, and
    what it is."""
    if champion is None:
        raise dg.Failure(f"no {model_name} champion registered yet", allow_retries=False)
    # Resolved by the resource's client: MLflow resolves a models:/ URI in the process-wide
    # registry ($MLFLOW_TRACKING_URI, else ./mlruns) whatever registry_uri it is given.
    stored_at = mlflow.client().get_model_version_download_uri(model_name, champion.version)
    local = mlflow_lib.artifacts.download_artifacts(
        stored_at, dst_path=str(into), tracking_uri=mlflow.tracking_uri
    )
    bundle = load_bundle(Path(local) / "artifacts" / "bundle")
    return bundle, BuiltFrom(model_name, str(champion.version), bundle.info["data_fingerprint"])


def serving_table(
    storage: RunStorage,
    run_id: str,
    table: str,
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    key: str,
    keys: list[str],
    what: str,
    built_from: BuiltFrom,
    k: int,
    facts: dict[str, float] | None = None,
) -> dg.MaterializeResult:
    """``batches`` written as ``table`` in the run's serving/<table>.duckdb (indexed by ``key``)
    and published as serving/<table>.duckdb in the run store, each row naming the model it came
    from; rows, build seconds, the median
    lookup of one of ``keys`` (the ``what``: tracks, users) and the caller's ``facts`` as
    metadata."""
    published = f"{SERVING_FOLDER}/{table}.duckdb"
    built = run_key(run_id, published)
    path = storage.writable(built)
    started = time.perf_counter()
    rows = write_table(path, table, batches, schema, key, asdict(built_from))
    seconds = time.perf_counter() - started
    sample = keys[:: max(1, len(keys) // LOOKUP_SAMPLE)]
    lookup = lookup_ms(path, table, key, sample)
    storage.commit(built)
    storage.publish(built, published)  # after all that can fail: kept_table trusts the file
    return dg.MaterializeResult(
        metadata=for_display(
            {
                "dagster/row_count": rows,
                what: len(keys),
                "k": k,
                "champion_version": built_from.model_version,
                "data_fingerprint": built_from.data_fingerprint,
                "build_seconds": seconds,
                "lookup_ms_p50": lookup,
                "path": storage.location(published),
                "worker": WORKER_NAME,
                **(facts or {}),
            }
        )
    )


def dbt_source_tests(
    dbt: DbtCliResource, storage: RunStorage, source: str, table: str, warehouse: str
) -> dg.AssetCheckResult:
    """``dbt test --select source:<source>`` on the published serving ``table`` against the
    published ``warehouse`` (the file the table's models live in: each use case has its own),
    both staged from the run store."""
    serving = storage.stage(f"{SERVING_FOLDER}/{table}.duckdb").parent
    with environment(
        NEXT_TRACK_WAREHOUSE=str(storage.stage(warehouse)), NEXT_TRACK_SERVING_DIR=str(serving)
    ):
        invocation = dbt.cli(
            ["test", "--select", f"source:{source}", "--indirect-selection", "eager"],
            manifest=dbt_project.manifest_path,
            raise_on_error=False,
        )
        invocation.wait()
    results = [
        r
        for r in invocation.get_artifact("run_results.json")["results"]
        if r["unique_id"].startswith("test.")
    ]
    check = dbt_tests_check_result(results, invocation.manifest, invocation.target_path)
    if check.passed:
        remove_target(invocation)
    return check


def dbt_tests_check_result(
    results: list[dict], manifest: dict, target: Path
) -> dg.AssetCheckResult:
    """The check of dbt tests' ``results`` (run_results entries): passed when every one passed.
    Tests that only warned (dbt's ``severity: warn``) fail it at WARN severity, as dagster-dbt
    reports such a test; any other failure, or no test selected at all, at ERROR. dbt's folder
    (``target``) is named unless all passed."""
    failed = [failure_line(r, manifest) for r in results if r["status"] not in ("pass", "warn")]
    warned = [failure_line(r, manifest) for r in results if r["status"] == "warn"]
    tests = len(results)
    clean = tests > 0 and not failed and not warned
    severity = dg.AssetCheckSeverity.WARN if tests and not failed else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(
        passed=clean,
        severity=severity,
        metadata=for_display(
            {"tests": tests, "failed": dg.MetadataValue.json(failed)}
            | ({"warned": dg.MetadataValue.json(warned)} if warned else {})
            | ({} if clean else {"dbt_target": str(target)})
        ),
        description=f"{tests - len(failed) - len(warned)}/{tests} dbt tests passed"
        + (f"; failed: {'; '.join(failed)}" if failed else "")
        + (f"; warned: {'; '.join(warned)}" if warned else ""),
    )

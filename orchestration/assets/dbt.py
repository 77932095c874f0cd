"""dbt models as assets, dbt tests as asset checks, built write-audit-publish.

Each run builds into a fresh DuckDB file in its own folder of the run store and publishes a copy
of it (swapped in whole) only when dbt succeeded, every blocking test included: a failed or killed
build leaves the last good warehouse exactly as it was, never tables of two runs side by side.
The run's later steps read the build they made, even if another run publishes in between, and a
SQL-only `dbt build` rewrites the published copy, never a run's own file.
"""

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    dbt_assets,
)

from ml.sources.interactions import INTERACTIONS_FILE, ITEMS_FILE
from ml.warehouse import read_only
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.config import DbtBuildConfig, UserItemsDbtConfig
from orchestration.lineage import key_for_run
from orchestration.project import dbt_project
from orchestration.settings import (
    RAW_EVENTS_KEY,
    USER_ITEMS_WAREHOUSE_KEY,
    WAREHOUSE_KEY,
    WAREHOUSE_POOL,
    WORKER_NAME,
)
from orchestration.storage import RunStorage, run_key

RAW_INTERACTIONS = dg.AssetKey("raw_interactions")
RAW_INTERACTIONS_KEY = f"raw/{INTERACTIONS_FILE}"
# dataset_stats columns a failed next-track build's message shows
FAILURE_COUNTS = ["rows_in", "rows_clean", "playlists_clean", "playlists_too_short", "playlists"]
MEMORY_LIMIT_VARIABLE = "NEXT_TRACK_DUCKDB_MEMORY_LIMIT"  # read by profiles/profiles.yml
OUT_OF_MEMORY = "Out of Memory Error"  # DuckDB's exception, in dbt's message


# The models' asset group is their use case's, set by orchestration/factory.py.
TRANSLATOR = DagsterDbtTranslator(
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True, enable_source_tests_as_checks=True
    )
)


def warehouse_for_run(storage: RunStorage, run_id: str, published: str = WAREHOUSE_KEY) -> str:
    """The key of the build this run made, else of the published warehouse."""
    build = run_key(run_id, published)
    return build if storage.exists(build) else published


@dataclass(frozen=True, kw_only=True)
class DbtBuild:
    """What one use case's ``dbt build`` needs from its run: the key it publishes, dbt's
    arguments (target, vars), and the environment its models read (the raw files the run
    ingested; for next-track also the run's id and the raw data's fingerprint)."""

    published: str
    arguments: list[str]
    env: dict[str, str]


def dbt_models(
    use_case: str,
    config_type: type[dg.Config],
    build_for_run: Callable[[dg.AssetExecutionContext, Any, RunStorage], DbtBuild],
) -> dg.AssetsDefinition:
    """The models under ``models/<use_case>`` as one asset per model, built in one step,
    ``<use_case>_dbt_models``, with its run config of type ``config_type``: ``build_for_run``
    says what this run builds, ``build_and_publish`` builds and publishes it."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=f"path:models/{use_case}",
        name=f"{use_case}_dbt_models",
        dagster_dbt_translator=TRANSLATOR,
        pool=WAREHOUSE_POOL,
    )
    def models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        # Dagster reads the run config's schema from this annotation: it must stay the class
        # itself (no `from __future__ import annotations` in this module).
        config: config_type,
        storage: RunStorage,
    ):
        yield from build_and_publish(context, dbt, storage, build_for_run(context, config, storage))

    return models


def next_track_dbt_build(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, storage: RunStorage
) -> DbtBuild:
    """The playlist rows this run ingested, its id and their fingerprint (the build record)."""
    run_id = context.run.run_id
    raw, raw_metadata = key_for_run(
        context.instance, raw_playlist_events.key, run_id, "raw_key", RAW_EVENTS_KEY
    )
    return DbtBuild(
        published=WAREHOUSE_KEY,
        arguments=["--vars", json.dumps(config.model_dump())],
        env={
            "NEXT_TRACK_RAW_PLAYLISTS": str(storage.stage(raw)),
            "NEXT_TRACK_BUILD_ID": run_id,
            "NEXT_TRACK_RAW_FINGERPRINT": str(raw_metadata.get("raw_fingerprint", "unknown")),
        },
    )


def user_items_dbt_build(
    context: dg.AssetExecutionContext, config: UserItemsDbtConfig, storage: RunStorage
) -> DbtBuild:
    """The interactions this run ingested and the items table written beside them."""
    interactions, _ = key_for_run(
        context.instance, RAW_INTERACTIONS, context.run.run_id, "raw_key", RAW_INTERACTIONS_KEY
    )
    items = str(Path(interactions).with_name(ITEMS_FILE))
    return DbtBuild(
        published=USER_ITEMS_WAREHOUSE_KEY,
        arguments=["--target", "user_items", "--vars", json.dumps(config.dbt_vars())],
        env={
            "NEXT_TRACK_RAW_INTERACTIONS": str(storage.stage(interactions)),
            "NEXT_TRACK_RAW_ITEMS": str(storage.stage(items)),
        },
    )


next_track_dbt_models = dbt_models("next_track", DbtBuildConfig, next_track_dbt_build)
user_items_dbt_models = dbt_models("user_items", UserItemsDbtConfig, user_items_dbt_build)


def build_and_publish(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, storage: RunStorage, spec: DbtBuild
) -> Iterator:
    """``dbt build`` into this run's own file (``runs/<run id>/<published>``); commit it to the
    run store, and publish a copy as ``published`` only if everything passed."""
    published = spec.published
    key = run_key(context.run.run_id, published)
    build = storage.writable(key)
    build.unlink(missing_ok=True)  # a re-executed step starts from an empty build
    started = time.perf_counter()
    with environment(NEXT_TRACK_WAREHOUSE=str(build), **spec.env):
        invocation = dbt.cli(["build", *spec.arguments], context=context, raise_on_error=False)
        events = list(invocation.stream())
    if not invocation.is_successful():
        failures = failed_nodes(invocation.get_artifact("run_results.json"), invocation.manifest)
        counts = build_counts(build)
        raise dg.Failure(
            description="dbt build failed, so nothing was published (the last good warehouse "
            f"{storage.location(published)} is unchanged): "
            + " | ".join(failures or [f"see the dbt log in {invocation.target_path}"])
            + (f" | counts of the failed build: {counts}" if counts else ""),
            metadata={
                "failures": dg.MetadataValue.json(failures),
                "build": str(build),
                "dbt_target": str(invocation.target_path),
            },
            allow_retries=False,
        )
    seconds = time.perf_counter() - started
    storage.commit(key)
    storage.publish(key, published)
    context.log.info(f"published {storage.location(key)} as {storage.location(published)}")
    yield from with_row_counts(events, invocation.manifest, build, storage.location(key), seconds)
    remove_target(invocation)


def remove_target(invocation: DbtCliInvocation) -> None:
    """dagster-dbt gives every invocation a target folder of its own (``target/<op>-<run>-<id>``,
    a manifest and logs: megabytes each); once a passing one's artifacts are read it goes, or
    every run would leave one behind. A failing one's stays, its dbt.log named in the failure."""
    shutil.rmtree(invocation.target_path, ignore_errors=True)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables for the dbt subprocess (it inherits this process's)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def failed_nodes(run_results: dict, manifest: dict) -> list[str]:
    """One line per failed model or test (``failure_line``)."""
    return [
        failure_line(result, manifest)
        for result in run_results.get("results", [])
        if result.get("status") in ("error", "fail", "runtime error")
    ]


def failure_line(result: dict, manifest: dict) -> str:
    """What a model or test of dbt's ``run_results`` is (its name, not the hash that ends its
    unique id), what it checks, and what dbt said."""
    unique_id = result["unique_id"]
    node = manifest["nodes"].get(unique_id, {})
    kwargs = (node.get("test_metadata") or {}).get("kwargs", {})
    checks = kwargs.get("arguments", kwargs).get("expression") if kwargs else None
    what = f"{node.get('resource_type', 'node')} {node.get('name', unique_id)}"
    if checks:
        what += f" (requires: {' '.join(str(checks).split())})"
    message = result.get("message") or ""
    if OUT_OF_MEMORY in message:
        message += f" ({memory_advice()})"
    return f"{what}: {result.get('status')}: {message}".strip()


def memory_advice() -> str:
    """What to do when a model outgrew DuckDB's memory limit (profiles/profiles.yml)."""
    limit = os.environ.get(MEMORY_LIMIT_VARIABLE, "unset: profiles.yml's 6GB")
    return (
        f"DuckDB's memory limit {MEMORY_LIMIT_VARIABLE} ({limit}) is too small for this data: "
        "what cannot spill to disk, such as each playlist's list of tracks, must fit within it; "
        f"set {MEMORY_LIMIT_VARIABLE} higher, 10GB for the full Million Playlist Dataset "
        "(docs/benchmarks.md)"
    )


def build_counts(build: Path) -> str:
    """The cleaning counts of a failed build, when dbt got as far as dataset_stats: they say why
    (every playlist too short, say)."""
    try:
        with read_only(build) as connection:
            stats = one_row_metadata(connection, "dataset_stats")
    except (FileNotFoundError, duckdb.Error):
        return ""
    return ", ".join(f"{name} {stats[name]:,}" for name in FAILURE_COUNTS if name in stats)


def with_row_counts(
    events: list, manifest: dict, warehouse: Path, location: str, seconds: float
) -> Iterator:
    """Attach ``dagster/row_count`` to each built model, counted once dbt has exited.

    dagster-dbt's ``fetch_row_counts()`` queries through an adapter connection opened in this
    process while the dbt subprocess still holds the DuckDB file, and leaves it open, which then
    blocks every later read-only connection in the run; one short-lived connection afterwards
    avoids both.
    """
    # schema.table, without the database: the build file's own catalog, whatever the target.
    relations = {
        unique_id: f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node.get("relation_name")
    }
    if not any(isinstance(e, dg.Output | dg.AssetMaterialization) for e in events):
        yield from events
        return
    with read_only(warehouse) as connection:
        for event in events:
            unique_id = getattr(getattr(event, "metadata", {}).get("unique_id"), "value", None)
            if isinstance(event, dg.Output | dg.AssetMaterialization) and unique_id in relations:
                relation = relations[unique_id]
                row_count = connection.execute(f"select count(*) from {relation}").fetchone()[0]
                extra = {
                    "dagster/row_count": row_count,
                    "warehouse": location,
                    "worker": WORKER_NAME,
                }
                if unique_id.endswith(".dataset_stats") and row_count == 1:
                    extra.update(one_row_metadata(connection, relation))
                    # dbt builds every model in one step: its time is the whole build's
                    extra["build_seconds"] = seconds
                    extra["raw_rows_per_second"] = extra.get("rows_in", 0) / seconds
                event = event.with_metadata({**event.metadata, **extra})
            yield event


def one_row_metadata(connection, relation: str) -> dict:
    """The cleaning summary (rows in, drops by reason, split sizes) as metadata entries."""
    cursor = connection.execute(f"select * from {relation}")
    names = [d[0] for d in cursor.description]
    values = cursor.fetchone()
    return {
        name: value if isinstance(value, int | str) else float(value)
        for name, value in zip(names, values, strict=True)
        if value is not None
    }

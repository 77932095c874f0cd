"""Which files a step reads: its own run's when this run made them, else the latest
materialization's (the metadata names their keys in the run store). Keeps data flow explicit
across runs."""

from __future__ import annotations

import dagster as dg


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey
) -> tuple[str, dict] | None:
    """The run and the metadata (values) of ``key``'s latest materialization; None if never."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return event.run_id, {k: v.value for k, v in event.asset_materialization.metadata.items()}


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, label: str) -> str | None:
    latest = latest_materialization(instance, key)
    value = None if latest is None else latest[1].get(label)
    return None if value is None else str(value)


def materialized_in_run(instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str) -> dict:
    """Metadata of ``key``'s materialization in ``run_id`` (empty if it was not materialized)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key == key:
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def key_for_run(
    instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str, label: str, fallback: str
) -> tuple[str, dict]:
    """The run-store key ``key`` wrote in this run (metadata ``label``), else in its latest
    materialization, else ``fallback``; with that materialization's metadata."""
    metadata = materialized_in_run(instance, key, run_id)
    if label not in metadata:
        latest = latest_materialization(instance, key)
        if latest is not None:
            metadata = latest[1]
    return str(metadata.get(label, fallback)), metadata

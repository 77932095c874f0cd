"""The steps both use cases' ingest and dataset assets share, in Dagster's terms: refusing a run
(dg.Failure), handing files over to the run store, and the metadata those assets attach."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import dagster as dg

from ml.sources import SourceError
from ml.sources.run_files import file_fingerprint
from orchestration.config import run_config_errors
from orchestration.lineage import latest_metadata, materialized_in_run
from orchestration.metadata import for_display
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key

Report = TypeVar("Report")


def refuse(problem: str | None) -> None:
    """Fail the step, without retries, when there is a ``problem`` (a sentence naming it)."""
    if problem:
        raise dg.Failure(description=problem, allow_retries=False)


def check_run_config(context: dg.AssetExecutionContext) -> None:
    """A pipeline's first step refuses the run before any work if any step's config is bad."""
    errors = run_config_errors(context.run.run_config)
    refuse("invalid run config: " + "; ".join(errors) if errors else None)


def ingest_or_fail(ingest: Callable[[], Report]) -> tuple[Report, float]:
    """``ingest()``'s report and its seconds. A source it cannot read fails the step with the
    message, which names the path and what was expected; the published table is untouched."""
    started = time.perf_counter()
    try:
        report = ingest()
    except SourceError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    return report, time.perf_counter() - started


def publish_run_files(storage: RunStorage, published: dict[str, str], fingerprinted: Path) -> str:
    """Commit each run file (its key -> the stable name it is published as) and publish it;
    the fingerprint of ``fingerprinted``, the local copy of one of them."""
    fingerprint = file_fingerprint(fingerprinted)
    for key, name in published.items():
        storage.commit(key)
        storage.publish(key, name)
    return fingerprint


def ingest_metadata(
    report: Any, seconds: float, raw_key: str, fingerprint: str, **facts: Any
) -> dict[str, Any]:
    """An ingest's metadata: rows, speed, format and where its file is, then ``facts`` (source
    and lineage among them)."""
    return for_display(
        {
            "dagster/row_count": report.rows_written,
            "seconds": seconds,
            "rows_per_second": report.rows_written / seconds if seconds else 0.0,
            "format": report.format,
            **facts,
            "raw_key": raw_key,
            "raw_fingerprint": fingerprint,
            "worker": WORKER_NAME,
        }
    )


def run_lineage(context: dg.AssetExecutionContext, ingest: dg.AssetKey) -> tuple[dict, str]:
    """The metadata of ``ingest``'s materialization in this run (empty if it was not), and the
    data lineage: this run's ingest's, else the latest ingest's, else "unknown"."""
    ingested = materialized_in_run(context.instance, ingest, context.run.run_id)
    lineage = ingested.get("lineage") or latest_metadata(context.instance, ingest, "lineage")
    return ingested, lineage or "unknown"


class Saveable(Protocol):
    def save(self, folder: Path) -> None: ...


@dataclass
class DatasetStep:
    """A dataset asset's run: the warehouse it reads, where it saves, how long it took."""

    storage: RunStorage
    run_id: str
    warehouse_key: str  # this run's build, else the published warehouse
    started: float = field(default_factory=time.perf_counter)

    @cached_property
    def warehouse(self) -> Path:
        """A local copy of the warehouse."""
        return self.storage.stage(self.warehouse_key)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def save(self, name: str, parts: dict[str, Saveable], problem: str | None) -> str:
        """Refuse the run on a ``problem``, else save each part in the run's ``name`` folder
        (in its own subfolder when the part is named); the folder's key."""
        refuse(problem)
        key = run_key(self.run_id, name)
        for part, data in parts.items():
            part_key = f"{key}/{part}" if part else key
            data.save(self.storage.writable(part_key))
            self.storage.commit(part_key)
        return key

    def metadata(self, key: str, facts: dict[str, Any]) -> dict[str, Any]:
        """``facts``, then where the dataset ``key`` and its warehouse are, and the worker."""
        return for_display(
            {
                **facts,
                "warehouse": self.storage.location(self.warehouse_key),
                "dataset": self.storage.location(key),
                "worker": WORKER_NAME,
            }
        )

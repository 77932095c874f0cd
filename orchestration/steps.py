"""The steps both use cases' ingest and dataset assets share, in Dagster's terms: refusing a run
(dg.Failure), handing files over to the run store, and the metadata those assets attach."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from ml.sources import SourceError
from ml.sources.run_files import file_fingerprint
from orchestration.config import run_config_errors
from orchestration.metadata import for_display
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage

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

"""raw_playlist_events: any supported source -> the canonical Parquet table dbt reads."""

from pathlib import Path

import dagster as dg

from ml.sources import IngestReport, ingest
from ml.sources.run_files import remove_stale_run_temporaries
from ml.sources.synthetic import SyntheticSpec
from orchestration.config import RawSourceConfig
from orchestration.settings import RAW_EVENTS_KEY
from orchestration.steps import check_run_config, ingest_metadata, ingest_or_fail, publish_run_files
from orchestration.storage import RunStorage, run_key


@dg.asset(
    kinds={"python", "parquet"},
    description="Raw playlist rows in the canonical schema "
    "(row_id, user_id, artist, track, playlist), from the configured source; written into the "
    "run's folder, then published as raw/playlist_events.parquet in the run store.",
)
def raw_playlist_events(
    context: dg.AssetExecutionContext, config: RawSourceConfig, storage: RunStorage
):
    check_run_config(context)  # the first step of a full run
    chosen = config.source_or_default()
    source = storage.stage_source(chosen)
    spec = SyntheticSpec(playlists=config.synthetic_playlists, seed=config.synthetic_seed)
    key = run_key(context.run.run_id, RAW_EVENTS_KEY)
    output = storage.writable(key)
    stale = _sweep(context, output)
    report, seconds = ingest_or_fail(
        lambda: ingest(source, output, synthetic=spec, log=context.log.info)
    )
    if report.malformed_lines:
        context.log.warning(
            f"skipped {report.malformed_lines:,} malformed lines in {report.source}: "
            f"{'; '.join(report.malformed_examples[:5])}"
        )
    fingerprint = publish_run_files(storage, {key: RAW_EVENTS_KEY}, output)
    lines = "" if report.lines_in_file is None else f" of {report.lines_in_file:,} lines"
    context.log.info(
        f"wrote {report.rows_written:,} rows{lines} ({report.format}) to {output}, "
        f"data {fingerprint}"
    )
    facts = _facts(report, chosen, stale, storage.location(key))
    return dg.MaterializeResult(
        metadata=ingest_metadata(report, seconds, key, fingerprint, **facts)
    )


def _sweep(context: dg.AssetExecutionContext, output: Path) -> list[str]:
    """A killed ingest leaves its temporary file in its own run's folder, so every run folder
    of this machine is swept (ingest itself only sweeps the folder it writes to: this run's)."""
    stale = remove_stale_run_temporaries(output.parents[2], RAW_EVENTS_KEY)
    for path in stale:
        context.log.info(f"removed {path}, left behind by an ingest that was killed")
    return stale


def _facts(report: IngestReport, chosen: str | None, stale: list[str], path: str) -> dict:
    """What a playlist ingest read, left out and swept, and the data it descends from."""
    lines = {} if report.lines_in_file is None else {"lines_in_file": report.lines_in_file}
    return {
        "source": chosen or report.source,
        "files": len(report.files),
        "malformed_lines_skipped": report.malformed_lines,
        "malformed_examples": dg.MetadataValue.json(report.malformed_examples),
        **lines,
        "blank_lines": report.blank_lines,
        "continuation_lines": report.continuation_lines,
        "last_line_unterminated": report.last_line_unterminated,
        "playlists_without_pos": report.playlists_without_pos,
        "ignored_files": dg.MetadataValue.json(report.ignored_files),
        "stale_temporaries_removed": len(stale),
        "path": path,
        # The data lineage a registered model descends from: a new lineage replaces the
        # champion; the same lineage must beat it.
        "lineage": report.files[0] if report.format == "synthetic" else chosen,
    }

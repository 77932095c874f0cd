"""raw_playlist_events: any supported source -> the canonical Parquet table dbt reads."""

import hashlib
import time
from pathlib import Path

import dagster as dg

from ml.sources import SourceError, ingest
from ml.sources.canonical import remove_stale_temporaries
from ml.sources.synthetic import SyntheticSpec
from orchestration.config import RawSourceConfig, run_config_errors
from orchestration.metadata import for_display
from orchestration.settings import RAW_EVENTS_KEY, WORKER_NAME
from orchestration.storage import RunStorage, run_key


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


@dg.asset(
    group_name="next_track",
    kinds={"python", "parquet"},
    description="Raw playlist rows in the canonical schema "
    "(row_id, user_id, artist, track, playlist), from the configured source; written into the "
    "run's folder, then published as raw/playlist_events.parquet in the run store.",
)
def raw_playlist_events(
    context: dg.AssetExecutionContext, config: RawSourceConfig, storage: RunStorage
):
    # The first step of a full run: refuse the run before any work if any step's config is bad.
    errors = run_config_errors(context.run.run_config)
    if errors:
        raise dg.Failure(
            description="invalid run config: " + "; ".join(errors), allow_retries=False
        )
    chosen = config.source_or_default()
    source = storage.stage_source(chosen)
    spec = SyntheticSpec(playlists=config.synthetic_playlists, seed=config.synthetic_seed)
    key = run_key(context.run.run_id, RAW_EVENTS_KEY)
    output = storage.writable(key)
    # A killed ingest leaves its temporary file in its own run's folder, so every run folder
    # of this machine is swept (ingest itself only sweeps the folder it writes to: this run's).
    stale = [
        str(path)
        for run_folder in output.parents[2].iterdir()
        for path in remove_stale_temporaries(run_folder / RAW_EVENTS_KEY)
    ]
    for path in stale:
        context.log.info(f"removed {path}, left behind by an ingest that was killed")
    started = time.perf_counter()
    try:
        report = ingest(source, output, synthetic=spec, log=context.log.info)
    except SourceError as e:
        # The message names the path and what was expected; the published table is untouched.
        raise dg.Failure(description=str(e), allow_retries=False) from e
    if report.malformed_lines:
        context.log.warning(
            f"skipped {report.malformed_lines:,} malformed lines in {report.source}: "
            f"{'; '.join(report.malformed_examples[:5])}"
        )
    seconds = time.perf_counter() - started
    fingerprint = file_fingerprint(output)
    storage.commit(key)
    storage.publish(key, RAW_EVENTS_KEY)
    lines = "" if report.lines_in_file is None else f" of {report.lines_in_file:,} lines"
    context.log.info(
        f"wrote {report.rows_written:,} rows{lines} ({report.format}) to {output}, "
        f"data {fingerprint}"
    )
    return dg.MaterializeResult(
        metadata=for_display(
            {
                "dagster/row_count": report.rows_written,
                "seconds": seconds,
                "rows_per_second": report.rows_written / seconds if seconds else 0.0,
                "source": chosen or report.source,
                "format": report.format,
                "files": len(report.files),
                "malformed_lines_skipped": report.malformed_lines,
                "malformed_examples": dg.MetadataValue.json(report.malformed_examples),
                **({} if report.lines_in_file is None else {"lines_in_file": report.lines_in_file}),
                "blank_lines": report.blank_lines,
                "continuation_lines": report.continuation_lines,
                "last_line_unterminated": report.last_line_unterminated,
                "playlists_without_pos": report.playlists_without_pos,
                "ignored_files": dg.MetadataValue.json(report.ignored_files),
                "stale_temporaries_removed": len(stale),
                "path": storage.location(key),
                "raw_key": key,
                "raw_fingerprint": fingerprint,
                "worker": WORKER_NAME,
                # The data lineage a registered model descends from: a new lineage replaces the
                # champion; the same lineage must beat it.
                "lineage": report.files[0] if report.format == "synthetic" else chosen,
            }
        )
    )

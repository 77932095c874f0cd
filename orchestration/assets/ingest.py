"""raw_playlist_events: any supported source -> the canonical Parquet table dbt reads."""

import dagster as dg

from ml.sources import SourceError, ingest
from ml.sources.synthetic import SyntheticSpec
from orchestration.config import RawSourceConfig, run_config_errors
from orchestration.settings import RAW_EVENTS_PATH


@dg.asset(
    group_name="next_track",
    kinds={"python", "parquet"},
    description="Raw playlist rows in the canonical schema "
    "(row_id, user_id, artist, track, playlist), from the configured source.",
)
def raw_playlist_events(context: dg.AssetExecutionContext, config: RawSourceConfig):
    # The first step of a full run: refuse the run before any work if any step's config is bad.
    errors = run_config_errors(context.run.run_config)
    if errors:
        raise dg.Failure(
            description="invalid run config: " + "; ".join(errors), allow_retries=False
        )
    source = config.source_path()
    spec = SyntheticSpec(playlists=config.synthetic_playlists, seed=config.synthetic_seed)
    try:
        report = ingest(source, RAW_EVENTS_PATH, synthetic=spec, log=context.log.info)
    except SourceError as e:
        # The message names the path and what was expected; the previous table is untouched.
        raise dg.Failure(description=str(e), allow_retries=False) from e
    if report.malformed_lines:
        context.log.warning(
            f"skipped {report.malformed_lines:,} malformed lines in {report.source}: "
            f"{'; '.join(report.malformed_examples[:5])}"
        )
    context.log.info(f"wrote {report.rows_written:,} rows ({report.format}) to {report.output}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.rows_written,
            "source": report.source,
            "format": report.format,
            "files": len(report.files),
            "malformed_lines_skipped": report.malformed_lines,
            "malformed_examples": dg.MetadataValue.json(report.malformed_examples),
            "path": dg.MetadataValue.path(report.output),
        }
    )

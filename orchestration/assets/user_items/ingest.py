"""raw_interactions and raw_items: any supported interactions source -> the canonical tables the
user-items dbt models read (written in the run's folder, then published in data/raw)."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from ml.sources import SourceError
from ml.sources.interactions import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    ColumnMapping,
    ingest_interactions,
)
from orchestration.assets.next_track.ingest import file_fingerprint
from orchestration.config import is_url, run_config_errors
from orchestration.metadata import for_display
from orchestration.settings import RAW_EVENTS_KEY, WORKER_NAME
from orchestration.storage import RunStorage, run_key


class InteractionsSourceConfig(dg.Config):
    source: str | None = Field(
        default=None,
        description="Interactions file or folder: RecBole atomic files (MovieLens .inter/.item), "
        "GroupLens u.data/u.item, a CSV or Parquet with user/item/timestamp columns (see the "
        "mapping), or the canonical playlist Parquet. Empty: the published playlist rows "
        "(user = playlist owner, item = track, time = row order).",
    )
    user_column: str = "user_id"
    item_column: str = "item_id"
    timestamp_column: str = "timestamp"
    rating_column: str | None = None
    timestamp_format: str | None = Field(
        default=None, description='strptime layout for text timestamps, e.g. "%d/%m/%Y"'
    )
    items: str | None = Field(default=None, description="Items file (item_id, title) for a CSV")

    def source_or_none(self) -> str | None:
        """The source as a URL, or as an absolute local path; None: the playlist rows."""
        if not self.source or is_url(self.source):
            return self.source or None
        return str(Path(self.source).expanduser().resolve())

    def mapping(self) -> ColumnMapping | None:
        mapping = ColumnMapping(
            self.user_column,
            self.item_column,
            self.timestamp_column,
            self.rating_column,
            self.timestamp_format,
        )
        return None if mapping == ColumnMapping() else mapping


@dg.multi_asset(
    specs=[
        # Without a source of its own it reads the published playlist rows: that dependency.
        dg.AssetSpec("raw_interactions", group_name="user_items", kinds={"python", "parquet"},
                     deps=["raw_playlist_events"],
                     description="Canonical interactions: row_id, user_id, item_id, timestamp "
                     "(UTC), rating."),
        dg.AssetSpec("raw_items", group_name="user_items", kinds={"python", "parquet"},
                     description="Canonical items: item_id, title, year, genres."),
    ],
)  # fmt: skip
def raw_interactions(
    context: dg.AssetExecutionContext, config: InteractionsSourceConfig, storage: RunStorage
):
    errors = run_config_errors(context.run.run_config)
    if errors:
        raise dg.Failure("invalid run config: " + "; ".join(errors), allow_retries=False)
    chosen = config.source_or_none()
    if chosen is None and not storage.exists(RAW_EVENTS_KEY):
        raise dg.Failure(
            f"{storage.location(RAW_EVENTS_KEY)}: no interactions source; set "
            "raw_interactions.config.source, or materialize raw_playlist_events first to use "
            "the playlists",
            allow_retries=False,
        )
    source = storage.stage_source(chosen) if chosen else storage.stage(RAW_EVENTS_KEY)
    if not source.exists():
        raise dg.Failure(f"{source}: no interactions source there", allow_retries=False)
    prefix = run_key(context.run.run_id, "raw")
    folder = storage.writable(f"{prefix}/{INTERACTIONS_FILE}").parent
    started = time.perf_counter()
    try:
        report = ingest_interactions(
            source,
            folder,
            mapping=config.mapping(),
            items=Path(config.items) if config.items else None,
            log=context.log.info,
        )
    except SourceError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    seconds = time.perf_counter() - started
    for name in (INTERACTIONS_FILE, ITEMS_FILE):
        storage.commit(f"{prefix}/{name}")
        storage.publish(f"{prefix}/{name}", f"raw/{name}")
    fingerprint = file_fingerprint(folder / INTERACTIONS_FILE)
    yield dg.MaterializeResult(
        asset_key="raw_interactions",
        metadata=for_display(
            {
                "dagster/row_count": report.rows_written,
                "users": report.users,
                "items": report.items,
                "format": report.format,
                "source": chosen or report.source,
                "lineage": chosen or report.source,
                "dropped": dg.MetadataValue.json(report.dropped),
                "dropped_examples": dg.MetadataValue.json(report.dropped_examples),
                "null_values_left_for_dbt": dg.MetadataValue.json(report.missing),
                "seconds": seconds,
                "rows_per_second": report.rows_written / seconds if seconds else 0.0,
                "raw_fingerprint": fingerprint,
                "raw_key": f"{prefix}/{INTERACTIONS_FILE}",
                "worker": WORKER_NAME,
            }
        ),
    )
    yield dg.MaterializeResult(
        asset_key="raw_items",
        metadata=for_display(
            {
                "dagster/row_count": report.items,
                "with_title": report.items_with_title,
                "metadata_left_null": dg.MetadataValue.json(report.blanked),
                "raw_key": f"{prefix}/{ITEMS_FILE}",
            }
        ),
    )

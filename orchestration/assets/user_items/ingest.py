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
from orchestration.assets.next_track.ingest import file_fingerprint, publish_file
from orchestration.config import run_config_errors
from orchestration.resources import RunStore
from orchestration.settings import RAW_DIR, RAW_EVENTS_PATH


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
    context: dg.AssetExecutionContext, config: InteractionsSourceConfig, run_store: RunStore
):
    errors = run_config_errors(context.run.run_config)
    if errors:
        raise dg.Failure("invalid run config: " + "; ".join(errors), allow_retries=False)
    source = Path(config.source).expanduser().resolve() if config.source else RAW_EVENTS_PATH
    if not source.exists():
        raise dg.Failure(
            f"{source}: no interactions source; set raw_interactions.config.source, or "
            "materialize raw_playlist_events first to use the playlists",
            allow_retries=False,
        )
    folder = run_store.run_dir(context.run.run_id) / "raw"
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
    interactions, items = folder / INTERACTIONS_FILE, folder / ITEMS_FILE
    for path in (interactions, items):
        publish_file(path, RAW_DIR / path.name)
    fingerprint = file_fingerprint(interactions)
    yield dg.MaterializeResult(
        asset_key="raw_interactions",
        metadata={
            "dagster/row_count": report.rows_written,
            "users": report.users,
            "items": report.items,
            "format": report.format,
            "source": report.source,
            "lineage": report.source,
            "dropped": dg.MetadataValue.json(report.dropped),
            "dropped_examples": dg.MetadataValue.json(report.dropped_examples),
            "null_values_left_for_dbt": dg.MetadataValue.json(report.missing),
            "seconds": seconds,
            "rows_per_second": report.rows_written / seconds if seconds else 0.0,
            "raw_fingerprint": fingerprint,
            "path": dg.MetadataValue.path(str(interactions)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="raw_items",
        metadata={
            "dagster/row_count": report.items,
            "with_title": report.items_with_title,
            "metadata_left_null": dg.MetadataValue.json(report.blanked),
            "path": dg.MetadataValue.path(str(items)),
        },
    )

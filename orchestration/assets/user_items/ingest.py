"""raw_interactions and raw_items: any supported interactions source -> the canonical tables the
user-items dbt models read (written in the run's folder, then published in data/raw)."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from ml.sources.interactions import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    ColumnMapping,
    InteractionsReport,
    ingest_interactions,
)
from orchestration.config import is_url
from orchestration.metadata import for_display
from orchestration.settings import RAW_EVENTS_KEY
from orchestration.steps import check_run_config, ingest_metadata, ingest_or_fail, publish_run_files
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
            user=self.user_column,
            item=self.item_column,
            timestamp=self.timestamp_column,
            rating=self.rating_column,
            timestamp_format=self.timestamp_format,
        )
        return None if mapping == ColumnMapping() else mapping


@dg.multi_asset(
    specs=[
        # Without a source of its own it reads the published playlist rows: that dependency.
        dg.AssetSpec(
            "raw_interactions",
            kinds={"python", "parquet"},
            deps=["raw_playlist_events"],
            description="Canonical interactions: row_id, user_id, item_id, timestamp (UTC), "
            "rating.",
        ),
        dg.AssetSpec(
            "raw_items",
            kinds={"python", "parquet"},
            description="Canonical items: item_id, title, year, genres.",
        ),
    ],
)
def raw_interactions(
    context: dg.AssetExecutionContext, config: InteractionsSourceConfig, storage: RunStorage
):
    check_run_config(context)
    chosen = config.source_or_none()
    source = _stage(storage, chosen)
    prefix = run_key(context.run.run_id, "raw")
    folder = storage.writable(f"{prefix}/{INTERACTIONS_FILE}").parent
    items = Path(config.items) if config.items else None
    report, seconds = ingest_or_fail(
        lambda: ingest_interactions(
            source, folder, mapping=config.mapping(), items=items, log=context.log.info
        )
    )
    published = {f"{prefix}/{name}": f"raw/{name}" for name in (INTERACTIONS_FILE, ITEMS_FILE)}
    fingerprint = publish_run_files(storage, published, folder / INTERACTIONS_FILE)
    yield dg.MaterializeResult(
        asset_key="raw_interactions",
        metadata=ingest_metadata(
            report,
            seconds,
            f"{prefix}/{INTERACTIONS_FILE}",
            fingerprint,
            **_facts(report, chosen),
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


def _stage(storage: RunStorage, chosen: str | None) -> Path:
    """The source as a local path: ``chosen``, else the published playlist rows."""
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
    return source


def _facts(report: InteractionsReport, chosen: str | None) -> dict:
    """Who and what an interactions ingest found, what it left out, and its data lineage."""
    return {
        "users": report.users,
        "items": report.items,
        "source": chosen or report.source,
        "lineage": chosen or report.source,
        "dropped": dg.MetadataValue.json(report.dropped),
        "dropped_examples": dg.MetadataValue.json(report.dropped_examples),
        "null_values_left_for_dbt": dg.MetadataValue.json(report.missing),
    }

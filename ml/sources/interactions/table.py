"""The canonical interactions and items tables, and the writer every interactions source uses.

``interactions.parquet``: ``row_id BIGINT, user_id VARCHAR, item_id VARCHAR, timestamp TIMESTAMP,
rating DOUBLE``. ``row_id`` is the row's position in the source (the tie-break between equal
timestamps); ``timestamp`` is UTC wall-clock time without a zone; ``rating`` is null when the
source has none. Values are written as the source has them (dbt trims, drops blanks and counts).

``items.parquet``: ``item_id VARCHAR, title VARCHAR, year INTEGER, genres VARCHAR[]``: every item
of the interactions and of the source's item file, with whatever metadata the source carries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ml.progress import Log, no_log
from ml.sources.canonical import CanonicalWriter

INTERACTIONS_FILE = "interactions.parquet"
ITEMS_FILE = "items.parquet"
INTERACTIONS_SCHEMA = pa.schema(
    [
        ("row_id", pa.int64()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("rating", pa.float64()),
    ]
)
PAYLOAD_SCHEMA = pa.schema([f for f in INTERACTIONS_SCHEMA if f.name != "row_id"])
ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
    ]
)
METADATA_SCHEMA = pa.schema([("position", pa.int64()), *ITEMS_SCHEMA])  # in arrival order
MAX_EXAMPLES = 20


@dataclass
class InteractionsReport:
    source: str
    format: str
    output_dir: str
    files: list[str] = field(default_factory=list)
    rows_written: int = 0
    users: int = 0
    items: int = 0
    items_with_title: int = 0
    # Lines the reader could not use, by reason ("malformed_line": wrong number of fields).
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_examples: list[str] = field(default_factory=list)
    # Rows written with a null user, item or timestamp: dbt drops and counts them.
    missing: dict[str, int] = field(default_factory=dict)
    # Item metadata that did not parse and was left null (MovieLens has the year 'unkonwn').
    blanked: dict[str, int] = field(default_factory=dict)

    def record_dropped(self, reason: str, where: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        if len(self.dropped_examples) < MAX_EXAMPLES:
            self.dropped_examples.append(where)

    def record_blanked(self, column: str) -> None:
        self.blanked[column] = self.blanked.get(column, 0) + 1

    def summary(self) -> str:
        parts = [
            f"{self.rows_written:,} interactions of {self.users:,} users and {self.items:,} items "
            f"({self.items_with_title:,} with a title) from {self.format}"
        ]
        if self.dropped:
            parts.append("dropped: " + ", ".join(f"{k} {v:,}" for k, v in self.dropped.items()))
        if any(self.missing.values()):
            parts.append(
                "null (dbt drops): " + ", ".join(f"{k} {v:,}" for k, v in self.missing.items())
            )
        if self.blanked:
            parts.append(
                "metadata left null: " + ", ".join(f"{k} {v:,}" for k, v in self.blanked.items())
            )
        return "; ".join(parts)


class InteractionsWriter:
    """Streams typed interaction batches to Parquet, numbering rows in arrival order, and item
    metadata beside them. On success it builds the items table (the interactions' items joined
    with the metadata, first entry of an item listed twice) and only then renames both staged
    files over the outputs, so a failed ingest keeps what an earlier one wrote."""

    def __init__(self, output_dir: Path, report: InteractionsReport, log: Log = no_log):
        self.output_dir = output_dir
        self.report = report
        pid = os.getpid()
        self._staged = {
            name: output_dir / f".{name}.{pid}.staged" for name in (INTERACTIONS_FILE, ITEMS_FILE)
        }
        self._interactions = CanonicalWriter(
            self._staged[INTERACTIONS_FILE], log, schema=INTERACTIONS_SCHEMA
        )
        self._metadata = CanonicalWriter(
            output_dir / f".item-metadata.{pid}.staged", schema=METADATA_SCHEMA
        )

    @property
    def rows(self) -> int:
        return self._interactions.rows

    def __enter__(self) -> InteractionsWriter:
        self._interactions.__enter__()
        self._metadata.__enter__()
        return self

    def write(self, payload: pa.Table) -> None:
        """Rows with the typed columns of PAYLOAD_SCHEMA."""
        self._interactions.write(payload)

    def write_items(self, items: pa.Table) -> None:
        """Item metadata with (some of) the columns of ITEMS_SCHEMA."""
        n = items.num_rows
        self._metadata.write(
            pa.table(
                {
                    f.name: items.column(f.name) if f.name in items.column_names else pa.nulls(n)
                    for f in ITEMS_SCHEMA
                }
            )
        )

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._interactions.__exit__(exc_type, exc, tb)
            self._metadata.__exit__(exc_type, exc, tb)
            if exc_type is None:
                self._finish()
                for name, staged in self._staged.items():
                    os.replace(staged, self.output_dir / name)
        finally:
            for staged in (*self._staged.values(), self._metadata.output):
                staged.unlink(missing_ok=True)

    def _finish(self) -> None:
        """Counts for the report and the items table, by DuckDB from the written files (no set
        of millions of ids in Python memory)."""
        interactions, metadata, items = (
            str(path).replace("'", "''")
            for path in (
                self._staged[INTERACTIONS_FILE],
                self._metadata.output,
                self._staged[ITEMS_FILE],
            )
        )
        with duckdb.connect() as connection:
            counts = connection.execute(
                "select count(*), count(distinct user_id), count(*) - count(user_id),"
                " count(*) - count(item_id), count(*) - count(timestamp)"
                f" from read_parquet('{interactions}')",
            ).fetchone()
            connection.execute(
                f"""
                copy (
                    with seen as (
                        select distinct item_id from read_parquet('{interactions}')
                        where item_id is not null
                    ),
                    known as (
                        select * from read_parquet('{metadata}') where item_id is not null
                        qualify row_number() over (partition by item_id order by position) = 1
                    )
                    select
                        coalesce(known.item_id, seen.item_id) as item_id,
                        known.title, known.year, known.genres
                    from seen
                    full outer join known on known.item_id = seen.item_id
                    order by item_id
                ) to '{items}' (format parquet, compression zstd)
                """
            )
            n_items, titled = connection.execute(
                f"select count(*), count(title) from read_parquet('{items}')"
            ).fetchone()
        self.report.rows_written, self.report.users = counts[0], counts[1]
        self.report.missing = dict(
            zip(("user_id", "item_id", "timestamp"), counts[2:], strict=True)
        )
        self.report.items, self.report.items_with_title = n_items, titled

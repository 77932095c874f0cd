"""User-item interactions with a timestamp: every supported format mapped onto one canonical
interactions table and one items table (see ``table``)."""

from ml.sources.interactions.ingest import (
    InteractionsFormat,
    detect_interactions_format,
    ingest_interactions,
)
from ml.sources.interactions.mapped import ColumnMapping, ItemColumns
from ml.sources.interactions.table import (
    INTERACTIONS_FILE,
    INTERACTIONS_SCHEMA,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    InteractionsReport,
)

__all__ = [
    "INTERACTIONS_FILE",
    "INTERACTIONS_SCHEMA",
    "ITEMS_FILE",
    "ITEMS_SCHEMA",
    "ColumnMapping",
    "InteractionsFormat",
    "InteractionsReport",
    "ItemColumns",
    "detect_interactions_format",
    "ingest_interactions",
]

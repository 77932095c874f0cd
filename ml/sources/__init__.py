"""Playlist sources: every supported format mapped onto one canonical raw table."""

from ml.sources.canonical import CANONICAL_SCHEMA, IngestReport, OutOfSpaceError, SourceError
from ml.sources.detect import SourceFormat, detect_format, ingest

__all__ = [
    "CANONICAL_SCHEMA",
    "IngestReport",
    "OutOfSpaceError",
    "SourceError",
    "SourceFormat",
    "detect_format",
    "ingest",
]

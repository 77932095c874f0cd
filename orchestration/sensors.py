"""Inbox sensor: a new or changed playlist file (or folder) in the inbox is ingested once.

The cursor maps each entry's name to its size and modification time, so an entry starts exactly
one run per version. An entry still being written (modified within the settle time, or named like
a partial download) waits for a later tick. A bad file's run fails with the reader's message and
is not requested again until the file changes.
"""

import json
import time
from pathlib import Path

import dagster as dg

from orchestration.assets.next_track.registry import NEXT_TRACK
from orchestration.factory import pipeline_job_name
from orchestration.settings import INBOX_DIR, INBOX_SETTLE_SECONDS
from orchestration.storage import RunStorage

PARTIAL_SUFFIXES = {".part", ".partial", ".tmp", ".crdownload", ".download"}


def entry_version(path: Path) -> tuple[int, float]:
    """(total size, latest mtime) of a file, or of every file inside a folder."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [f.stat() for f in files]
    return sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=0.0)


def settled_entries(inbox: Path, settle_seconds: float, now: float) -> dict[str, str]:
    """Entries ready to ingest, each with a version string."""
    ready = {}
    for path in sorted(inbox.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() in PARTIAL_SUFFIXES:
            continue
        size, mtime = entry_version(path)
        if size == 0 or now - mtime < settle_seconds:
            continue  # empty so far, or still being written
        ready[path.name] = f"{size}:{mtime:.6f}"
    return ready


@dg.sensor(
    job_name=pipeline_job_name(NEXT_TRACK),
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Ingest new or changed files dropped into the inbox ({INBOX_DIR}).",
)
def inbox_sensor(context: dg.SensorEvaluationContext, storage: RunStorage):
    INBOX_DIR.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    ready = settled_entries(INBOX_DIR, INBOX_SETTLE_SECONDS, time.time())
    new = {name: version for name, version in ready.items() if seen.get(name) != version}
    if not new:
        return dg.SkipReason(f"nothing new in {INBOX_DIR}")
    context.update_cursor(json.dumps({**seen, **new}))
    # In a bucket store, the file goes there first: the ingest may run on another machine.
    sources = {name: storage.upload_source(INBOX_DIR / name) for name in new}
    return [
        dg.RunRequest(
            run_key=f"{name}@{version}",
            run_config={"ops": {"raw_playlist_events": {"config": {"source": sources[name]}}}},
            tags={"next_track/inbox_file": name},
        )
        for name, version in new.items()
    ]

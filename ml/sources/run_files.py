"""What an ingest step does around the ingest itself: fingerprint the file it wrote, and sweep
the temporary files killed ingests left in any run's folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ml.sources.canonical import remove_stale_temporaries


def file_fingerprint(path: Path) -> str:
    """The first 16 hex digits of the file's sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def remove_stale_run_temporaries(runs: Path, relative: str) -> list[str]:
    """Temporaries of ``<run folder>/<relative>`` left by killed ingests, in every run folder
    under ``runs``, deleted; their paths. An ingest only sweeps the folder it writes to, and a
    killed one leaves its file in its own run's folder."""
    return [
        str(path)
        for run_folder in runs.iterdir()
        for path in remove_stale_temporaries(run_folder / relative)
    ]

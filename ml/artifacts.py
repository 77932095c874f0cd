"""Where fitted models and other files a step writes for another step live.

An artifact is named by a key (``runs/<run>/candidates/<unit>``), never by a local path: the
store behind the key may be a folder on this machine or a bucket other machines share. A writer
asks for a local path to write into (``writable``), then ``commit``s it; a reader ``stage``s the
key into a local path. The library only sees this protocol; the pipeline's storage resource
implements it for a folder or a bucket, and ``LocalArtifacts`` is the plain folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ArtifactStore(Protocol):
    def writable(self, key: str) -> Path:
        """A local path to write artifact ``key`` into (a file or a folder)."""
        ...

    def commit(self, key: str) -> str:
        """Make what was written at ``writable(key)`` durable in the store; returns ``key``."""
        ...

    def stage(self, key: str) -> Path:
        """A local path holding artifact ``key`` (fetched from the store when it is remote)."""
        ...


class LocalArtifacts:
    """Artifacts as files and folders under ``root``: writing is committing, staging is reading
    in place."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def writable(self, key: str) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, key: str) -> str:
        if not (self.root / key).exists():
            raise FileNotFoundError(f"{self.root / key}: nothing was written for {key}")
        return key

    def stage(self, key: str) -> Path:
        path = self.root / key
        if not path.exists():
            raise FileNotFoundError(f"{path}: no artifact {key}")
        return path

"""The one seam that decides where a run's bytes live: a folder on this machine (the default, the
data folder) or an S3 bucket every worker shares (the cluster profile).

Everything a step hands to another (the raw file, the warehouse build, the encoded dataset, fitted
candidates, plots, the bundle, serving tables, the IO manager's handles) is named by a key such
as ``runs/<run id>/dataset``. A step writes into ``writable(key)``, a local path, and ``commit``s
it; a step that reads ``stage``s the key into a local path. In a folder store the three are the
same path, so nothing is copied; in a bucket, ``writable`` and ``stage`` are in this process's
scratch folder and ``commit`` uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg
from upath import UPath

from orchestration.settings import (
    KEEP_RUNS,
    MIN_FREE_MB,
    S3_ENDPOINT_URL,
    SCRATCH_DIR,
    STORAGE_URL,
)

RUNS = "runs"
STAGED_MARKER = ".staged.json"  # beside a staged key: the listing it was fetched at


def run_key(run_id: str, *parts: str) -> str:
    return "/".join([RUNS, run_id, *parts])


class RunStorage(dg.ConfigurableResource):
    """Run files under ``url``: ``file:///...`` (a local folder) or ``s3://bucket[/prefix]``
    (credentials from the AWS_* environment; ``endpoint_url`` for an S3-compatible server).
    Old runs' folders are pruned, keeping the newest ``keep_runs`` and any still in use. A step
    asking for a place to write fails, naming it, when its file system has less than
    ``min_free_mb`` free, before it writes anything."""

    url: str = STORAGE_URL
    endpoint_url: str | None = S3_ENDPOINT_URL
    scratch_dir: str = str(SCRATCH_DIR)
    keep_runs: int = KEEP_RUNS
    min_free_mb: int = MIN_FREE_MB

    # Where the bytes are
    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:") or "://" not in self.url

    def root(self) -> UPath:
        if self.is_local:
            return UPath(self._local_root())
        # Other machines write here at any time: every listing is asked afresh, never cached.
        options: dict = {"use_listings_cache": False}
        if self.endpoint_url:
            options["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        return UPath(self.url.rstrip("/"), **options)

    def _local_root(self) -> Path:
        if not self.is_local:
            return Path(self.scratch_dir)
        return Path(url2pathname(urlparse(self.url).path)) if "://" in self.url else Path(self.url)

    def location(self, key: str) -> str:
        """Where ``key`` lives, for people: a local path or an s3:// URL."""
        return str(self._local_root() / key) if self.is_local else self.uri(key)

    def uri(self, key: str) -> str:
        """``key`` as a URI: file:///... or s3://..."""
        if self.is_local:
            return (self._local_root() / key).resolve().as_uri()
        return f"{self.url.rstrip('/')}/{key}"

    # The three steps of a hand-over
    def writable(self, key: str) -> Path:
        self.ensure_space(key)
        path = self._local_root() / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def ensure_space(self, key: str) -> None:
        """Fail, naming the folder, when writing ``key`` here would start with less than
        ``min_free_mb`` free; a run's files are checked at the run's folder."""
        parts = Path(key).parts
        folder = self._local_root().joinpath(*parts[:2] if parts[0] == RUNS else parts[:-1])
        folder.mkdir(parents=True, exist_ok=True)
        self._check_free_space(folder)

    def commit(self, key: str) -> str:
        local = self._local_root() / key
        if not local.exists():
            raise FileNotFoundError(f"{local}: nothing was written for {key}")
        if not self.is_local:
            self._upload(local, key)
        return key

    def upload_source(self, source: Path) -> str:
        """A local file or folder to ingest, uploaded once under ``sources/`` (named by a digest
        of its files' names, sizes and times); its URL, which ingest steps anywhere stage."""
        if self.is_local:
            return str(source.resolve())
        digest = hashlib.sha256()
        for path in _files(source):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(source)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
        key = f"sources/{digest.hexdigest()[:16]}/{source.name}"
        if not self.exists(key):
            self._upload(source, key)
        return self.uri(key)

    def stage(self, key: str) -> Path:
        """A local path holding ``key``. From a bucket, fetched into scratch unless the copy
        there was fetched from the same objects (same listing: sizes and ETags)."""
        local = self._local_root() / key
        if self.is_local:
            if not local.exists():
                raise FileNotFoundError(f"{local}: {key} not found in the run store")
            return local
        fs, remote = self._remote(key)
        listing = fs.find(remote, detail=True, withdirs=False)
        if not listing:
            raise FileNotFoundError(f"{self.location(key)}: {key} not found in the run store")
        versions = {name: [info.get("size"), info.get("ETag")] for name, info in listing.items()}
        marker = local.parent / f".{local.name}{STAGED_MARKER}"
        if local.exists() and marker.exists() and json.loads(marker.read_text()) == versions:
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        self._check_free_space(local.parent)
        if local.is_dir():
            shutil.rmtree(local)
        single = list(listing) == [remote]
        names = list(listing)
        targets = [str(local) if single else str(local / n[len(remote) + 1 :]) for n in names]
        for target in targets:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        fs.get(names, targets)
        marker.write_text(json.dumps(versions))
        return local

    def stage_source(self, source: str | None) -> Path | None:
        """A source to ingest as a local path: a local path as it is; a URL inside this store
        (``<url>/sources/...``, where `make run PROFILE=cluster` uploads a file) staged."""
        if source is None or "://" not in source or source.startswith("file://"):
            return None if source is None else Path(source.removeprefix("file://"))
        prefix = self.url.rstrip("/") + "/"
        if not source.startswith(prefix):
            raise dg.Failure(
                f"source {source}: not in the run store {self.url}; upload it there (make run "
                "PROFILE=cluster SOURCE=<local path> does) or give a local path",
                allow_retries=False,
            )
        return self.stage(source.removeprefix(prefix))

    # Small objects, read and written whole
    def exists(self, key: str) -> bool:
        return (self.root() / key).exists()

    def read_bytes(self, key: str) -> bytes:
        path = self.root() / key
        if not path.exists():
            raise FileNotFoundError(f"{self.location(key)}: {key} not found in the run store")
        return path.read_bytes()

    def publish(self, key: str, published: str) -> None:
        """Copy ``key`` to the stable name ``published`` that people and plain dbt read. A copy,
        so the run's own file stays what the run wrote; locally it replaces the old one in one
        rename, so a reader sees the old file or the new one, never half of it."""
        if not self.is_local:
            fs, remote = self._remote(key)
            fs.copy(remote, self._remote(published)[1])
            return
        source, target = self._local_root() / key, self._local_root() / published
        self.ensure_space(published)
        staged = target.with_name(f".{target.name}.{os.getpid()}.publishing")
        shutil.copyfile(source, staged)
        os.replace(staged, target)

    def prune(self, protect: set[str]) -> list[str]:
        """Remove the oldest run folders beyond ``keep_runs`` (and this process's staged copies
        of them); never one in ``protect``."""
        runs = self.root() / RUNS
        if not runs.exists():
            return []
        folders = [p for p in runs.iterdir() if p.is_dir()]
        ages = {p.name: self._age(p) for p in folders}
        removed = []
        for name in sorted(ages, key=ages.get)[: max(0, len(ages) - self.keep_runs)]:
            if name not in protect:
                folder = runs / name
                folder.fs.rm(folder.path, recursive=True)
                shutil.rmtree(Path(self.scratch_dir) / RUNS / name, ignore_errors=True)
                removed.append(name)
        return removed

    # Helpers
    def _upload(self, local: Path, key: str) -> None:
        fs, remote = self._remote(key)
        files = _files(local)
        targets = [
            remote if p == local else f"{remote}/{p.relative_to(local).as_posix()}" for p in files
        ]
        fs.put([str(p) for p in files], targets)

    def _remote(self, key: str):
        root = self.root()
        return root.fs, f"{root.path.rstrip('/')}/{key}"

    def _age(self, folder: UPath) -> float:
        if self.is_local:
            return Path(folder.path).stat().st_mtime
        infos = folder.fs.find(folder.path, detail=True, maxdepth=3).values()
        times = [i["LastModified"].timestamp() for i in infos if i.get("LastModified")]
        return min(times, default=time.time())

    def _check_free_space(self, folder: Path) -> None:
        free_mb = shutil.disk_usage(folder).free // 2**20
        if free_mb < self.min_free_mb:
            raise dg.Failure(
                description=f"{folder}: only {free_mb:,} MB free there, below the "
                f"{self.min_free_mb:,} MB a step needs to start (NEXT_TRACK_MIN_FREE_MB), so "
                "the step stopped before writing anything; free space there (or point "
                "NEXT_TRACK_DATA_DIR elsewhere) and run again.",
                allow_retries=False,
            )


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())

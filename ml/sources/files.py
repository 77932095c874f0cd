"""Reading source files as bytes, plain or compressed.

Compression is recognised by the file's first bytes, not its name: gzip, bzip2 and zstd are
decompressed by pyarrow's streaming codecs, xz by the standard library. A zip archive is refused
with the command that unpacks it (it can hold several files).
"""

from __future__ import annotations

import lzma
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from ml.sources.canonical import SourceError

MAGIC_CODECS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
}
ZIP_MAGIC = b"PK\x03\x04"
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".xz")
CHUNK_BYTES = 8 << 20


def compression_of(path: Path) -> str | None:
    """The codec the file is compressed with, or None for a plain file."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(ZIP_MAGIC):
        raise SourceError(
            f"{path}: a zip archive; unpack it first (unzip '{path.name}') and point at the file "
            "or folder inside"
        )
    return next((codec for magic, codec in MAGIC_CODECS.items() if head.startswith(magic)), None)


def uncompressed_name(path: Path) -> str:
    """``spotify_dataset.csv.gz`` -> ``spotify_dataset.csv``: the name that tells the format."""
    name = path.name
    for suffix in COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _open(path: Path, codec: str | None) -> BinaryIO:
    if codec is None:
        return path.open("rb")
    if codec == "xz":
        return lzma.open(path, "rb")
    return pa.CompressedInputStream(pa.OSFile(str(path)), codec)


def read_chunks(path: Path, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; corrupt or truncated compressed data is a
    ``SourceError`` naming the file and how far it was read."""
    codec = compression_of(path)
    done = 0
    with _open(path, codec) as f:
        while True:
            try:
                chunk = f.read(size)
            except (OSError, EOFError, lzma.LZMAError) as e:
                if codec is None:
                    raise
                raise SourceError(
                    f"{path}: {codec} data is truncated or corrupt after {done:,} decompressed "
                    f"bytes ({e}); download it again, or decompress it to see the error"
                ) from e
            if not chunk:
                return
            done += len(chunk)
            yield chunk


def read_head(path: Path, size: int = 4096) -> bytes:
    """Up to ``size`` (decompressed) bytes from the start of the file."""
    head = b""
    for chunk in read_chunks(path, size):
        head += chunk
        if len(head) >= size:
            break
    return head[:size]


def read_all(path: Path) -> bytes:
    """The whole (decompressed) file: for files read whole anyway, such as one MPD slice."""
    return b"".join(read_chunks(path))

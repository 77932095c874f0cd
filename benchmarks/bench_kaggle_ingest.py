"""Ingest a full-size (~1.2 GB) file in the Kaggle "Spotify Playlists" layout: time and peak
memory, to show the CSV is streamed and never held in memory. Not a test: run it by hand.

    python benchmarks/bench_kaggle_ingest.py [--megabytes 1200]

The file is written from the synthetic generator with the real header's stray quotes and spaces,
quoted fields with commas, blank artists, and two malformed lines per 100,000 rows: one with too
many fields and one that opens a quote it never closes (which must not swallow the rows after
it). The ingest must account for every line: rows + malformed + header == lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from ml.sources.synthetic import SyntheticSpec, generate_rows

HEADER = 'user_id," ""artistname"""," ""trackname"""," ""playlistname"""\n'


def write_kaggle_csv(path: Path, megabytes: int) -> tuple[int, int]:
    """Returns (good rows, malformed lines) written."""
    limit, rows, malformed = megabytes << 20, 0, 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        writer = csv.writer(f)
        seed = 0
        while f.tell() < limit:
            for batch in generate_rows(SyntheticSpec(playlists=20_000, seed=seed)):
                for user, artist, track, playlist in batch:
                    writer.writerow([user, artist or "", f"{track}, live", f"{playlist} #{seed}"])
                    rows += 1
                    if rows % 100_000 == 0:
                        f.write("broken,line,with,too,many,fields\r\n")
                        f.write('u1,"Unbalanced Artist,Song X,Pl\r\n')
                        malformed += 2
                if f.tell() >= limit:
                    break
            seed += 1
    return rows, malformed


def ingest_in_child(source: Path, output: Path, fields: list[str]) -> dict:
    """Ingests in a child process, so the peak memory and CPU time measured are the ingest's
    own; returns the report's ``fields``, wall and CPU seconds (both threads) and peak RSS."""
    code = (
        "import json, sys; from pathlib import Path; from ml.sources import ingest; "
        "r = ingest(Path(sys.argv[1]), Path(sys.argv[2])); "
        "print(json.dumps({name: getattr(r, name) for name in sys.argv[3:]}))"
    )
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", code, str(source), str(output), *fields],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the one child waited for
    return {
        **json.loads(child.stdout.strip().splitlines()[-1]),
        "ingest_seconds": seconds,
        "ingest_cpu_seconds": usage.ru_utime + usage.ru_stime,  # a shared machine: wall varies
        "ingest_peak_rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=1200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "spotify_dataset.csv"
        started = time.perf_counter()
        rows, malformed = write_kaggle_csv(source, args.megabytes)
        written_seconds = time.perf_counter() - started
        output = Path(tmp) / "raw.parquet"
        fields = ["rows_written", "malformed_lines", "lines_in_file"]
        measured = ingest_in_child(source, output, fields)
        accounted = measured["rows_written"] + measured["malformed_lines"] + 1
        result = {
            "csv_megabytes": source.stat().st_size / 2**20,
            "rows_in_csv": rows,
            "malformed_lines_in_csv": malformed,
            **measured,
            "every_line_accounted": accounted == measured["lines_in_file"],
            "parquet_rows": pq.read_metadata(output).num_rows,
            "csv_write_seconds": written_seconds,
            "ingest_rows_per_second": measured["rows_written"] / measured["ingest_seconds"],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Ingest a full-size (~1.2 GB) file in the Kaggle "Spotify Playlists" layout: time and peak
memory, to show the CSV is streamed and never held in memory. Not a test: run it by hand.

    python benchmarks/bench_kaggle_ingest.py [--fraction 1.0]

The file is the Kaggle-shaped CSV of ``ml.sources.kaggle_shaped`` (the real header's stray quotes
and spaces, quoted names with commas and quotes, blank artists, ~1% malformed lines); the ingest
is checked against its manifest.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from ml.sources.kaggle_shaped import KaggleShapedSpec, write_kaggle_shaped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fraction", type=float, default=1.0, help="of Kaggle's scale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "spotify_dataset.csv"
        started = time.perf_counter()
        manifest = write_kaggle_shaped(KaggleShapedSpec(fraction=args.fraction), source)
        written_seconds = time.perf_counter() - started
        # The ingest runs in a child process so its peak memory is its own, not the writer's.
        output = Path(tmp) / "raw.parquet"
        code = (
            "import json, sys; from pathlib import Path; from ml.sources import ingest; "
            "r = ingest(Path(sys.argv[1]), Path(sys.argv[2])); "
            "print(json.dumps([r.rows_written, r.malformed_lines]))"
        )
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", code, str(source), str(output)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        rows_written, malformed_reported = json.loads(child.stdout.strip().splitlines()[-1])
        result = {
            "csv_megabytes": source.stat().st_size / 2**20,
            "rows_in_csv": manifest.rows,
            "malformed_lines_in_csv": sum(len(lines) for lines in manifest.malformed.values()),
            "rows_ingested": rows_written,
            "malformed_lines_reported": malformed_reported,
            "parquet_rows": pq.read_metadata(output).num_rows,
            "csv_write_seconds": written_seconds,
            "ingest_seconds": seconds,
            "ingest_rows_per_second": rows_written / seconds,
            "ingest_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Ingest a full-size (~1.2 GB) file in the Kaggle "Spotify Playlists" layout: time and peak
memory, to show the CSV is streamed and never held in memory. Not a test: run it by hand.

    python benchmarks/bench_kaggle_ingest.py [--fraction 1.0]

The file is the Kaggle-shaped CSV of ``ml.sources.kaggle_shaped`` (the real header's stray quotes
and spaces, quoted names with commas and quotes, blank artists, ~1% malformed lines, some with a
quote they never close, which must not swallow the rows after them). The ingest must account for
every line and agree with the writer's manifest.
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
    parser.add_argument("--fraction", type=float, default=1.0, help="of Kaggle's scale")
    parser.add_argument(
        "--unbalanced-quote-share", type=float, default=0.001,
        help="share of data lines that open a quote they never close",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "spotify_dataset.csv"
        started = time.perf_counter()
        spec = KaggleShapedSpec(
            fraction=args.fraction, unbalanced_quote_share=args.unbalanced_quote_share
        )
        manifest = write_kaggle_shaped(spec, source)
        written_seconds = time.perf_counter() - started
        output = Path(tmp) / "raw.parquet"
        fields = ["rows_written", "malformed_lines", "lines_in_file"]
        measured = ingest_in_child(source, output, fields)
        result = {
            "csv_megabytes": source.stat().st_size / 2**20,
            "rows_in_csv": manifest.rows,
            "malformed_lines_in_csv": sum(len(lines) for lines in manifest.malformed.values()),
            **measured,
            "every_line_accounted": measured["rows_written"] + measured["malformed_lines"] + 1
            == measured["lines_in_file"],
            "parquet_rows": pq.read_metadata(output).num_rows,
            "csv_write_seconds": written_seconds,
            "ingest_rows_per_second": measured["rows_written"] / measured["ingest_seconds"],
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

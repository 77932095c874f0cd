"""The whole pipeline on a Kaggle-shaped CSV at a fraction of Kaggle's scale, or on MPD-shaped
slices at a fraction of the Million Playlist Dataset: wall seconds and peak RSS per Dagster step and
in total. Not a test: `make bench-scale FRACTION=0.01`.

    python benchmarks/bench_scale.py --fraction 0.01 [--seed 42] [--keep-data] [--no-tutorial]
    python benchmarks/bench_scale.py --shape mpd --fraction 1   # 1,000 slices, ~64M rows
    python benchmarks/bench_scale.py --compare small/bench_scale.json big/bench_scale.json

Each run gets a fresh folder under ``$NEXT_TRACK_DATA_DIR/bench-scale/`` (``data/`` by default,
git-ignored). The CSV is written there by ``ml.sources.kaggle_shaped`` (MPD slices: by
``bench_mpd_ingest.py --walked``, ``fraction`` x 1,000 slices of 1,000 playlists whose tracks
walk as the Kaggle-shaped file's do), then the pipeline runs
exactly as a user's ``make run SOURCE=...`` does (``python -m orchestration.run --source``) with its
own NEXT_TRACK_DATA_DIR, DAGSTER_HOME and MLFLOW_TRACKING_URI. The RSS of the whole process tree
(worker processes included) is sampled from /proc every 0.2 s; afterwards the run's step events
are read from that DAGSTER_HOME, whatever the steps are called, and each step (and each asset of
a multi-asset step) gets the seconds it took and the peak RSS sampled meanwhile. The table is
saved as ``bench_scale.json`` beside the run's logs; the input and the pipeline's data are deleted
afterwards unless ``--keep-data``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from peak_memory import MIB, process_tree

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.2
HEARTBEAT_SECONDS = 60


@dataclass
class Measured:
    """A child process run to its end, with the RSS of its process tree over time."""

    exit_code: int
    started: float  # unix seconds
    ended: float
    cpu_seconds: float  # user + system of the whole tree (the machine is shared: wall varies)
    samples: list[tuple[float, int]]  # (unix seconds, bytes)
    killed_over_mib: float | None = None  # the tree was killed when its RSS passed this
    # Peak growth of the used space on the run folder's file system (deleted input counted back)
    disk_growth_bytes: int = 0

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def peak_mib(self, start: float | None = None, end: float | None = None) -> float:
        """Peak RSS sampled in [start, end], widened by one sampling interval each side so a
        step shorter than the interval still gets the samples around it."""
        low = (self.started if start is None else start) - SAMPLE_SECONDS
        high = (self.ended if end is None else end) + SAMPLE_SECONDS
        return max((rss for t, rss in self.samples if low <= t <= high), default=0) / MIB


@dataclass
class Timing:
    name: str  # a step key, or "  <asset>" under its step
    status: str
    start_offset: float  # seconds after the pipeline process started
    seconds: float
    peak_rss_mib: float


@dataclass
class BenchResult:
    shape: str  # kaggle: one CSV; mpd: a folder of MPD slices
    fraction: float
    seed: int
    commit: str
    machine: dict
    csv: dict  # the writer's manifest (a CSV's without its malformed line numbers)
    writer: dict
    pipeline: dict
    steps: list[Timing] = field(default_factory=list)
    summary: str = ""  # what `make run` printed: data, validation and the selected model
    config: str | None = None  # the run config file, as `make run CONFIG=...`; None: defaults
    # The reference tutorial's single Word2Vec fitted on the run's own train split, after the
    # pipeline (bench_word2vec.py): the yardstick the pipeline's wall time is compared with.
    tutorial_word2vec: dict | None = None
    # The project's environment variables set for the run (DuckDB's memory limit, say).
    environment: dict[str, str] = field(default_factory=dict)


def run_sampled(
    command: list[str],
    env: dict[str, str],
    log: Path,
    label: str,
    max_rss_mib: float | None = None,
    drop_after_ingest: Path | None = None,
) -> Measured:
    """Run ``command`` (stdout to ``log``, stderr to ``log`` with ``.err``), sampling its RSS
    and CPU. The CPU is summed over every process seen in the tree (the step processes of
    Dagster's forkserver are not children the run waits for, so rusage would miss them); a
    process's last 0.2 s before it ends can be missed. Past ``max_rss_mib`` the whole tree is
    killed, before the kernel's out-of-memory killer picks a process of its own choosing. The
    used space of ``log``'s file system is sampled too; ``drop_after_ingest`` (the input) is
    deleted once the run's stderr says the ingest step is done, its size counted back in."""
    samples: list[tuple[float, int]] = []
    cpu_of: dict[int, float] = {}
    disk_at_start = shutil.disk_usage(log.parent).used
    disk_growth, dropped_bytes = 0, 0
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        started = time.time()
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
        next_heartbeat = started + HEARTBEAT_SECONDS
        killed_over = None
        while child.poll() is None:
            now = time.time()
            rss, cpu = process_tree(child.pid)
            samples.append((now, rss))
            cpu_of.update(cpu)
            if max_rss_mib and rss / MIB > max_rss_mib and killed_over is None:
                print(f"  {label}: RSS {rss / MIB:,.0f} MiB over {max_rss_mib:,.0f}: killing it")
                killed_over = max_rss_mib
                os.killpg(child.pid, signal.SIGKILL)
                for pid in cpu:  # step processes that left the session
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            used = shutil.disk_usage(log.parent).used + dropped_bytes - disk_at_start
            disk_growth = max(disk_growth, used)
            if drop_after_ingest and not dropped_bytes and ingest_done(log.with_suffix(".err")):
                dropped_bytes = delete(drop_after_ingest)
                print(
                    f"  {label}: ingest done, the input deleted ({dropped_bytes / 2**30:.1f} GiB)"
                )
            if now >= next_heartbeat:
                print(
                    f"  {label}: {now - started:,.0f} s, RSS {samples[-1][1] / MIB:,.0f} MiB, "
                    f"disk +{used / 2**30:,.1f} GiB"
                )
                next_heartbeat += HEARTBEAT_SECONDS
            time.sleep(SAMPLE_SECONDS)
        ended = time.time()
    cpu_seconds = sum(cpu_of.values())
    return Measured(
        child.returncode, started, ended, cpu_seconds, samples, killed_over, disk_growth
    )


def ingest_done(stderr: Path) -> bool:
    """Whether the pipeline's console said its ingest step is done (orchestration/console.py)."""
    return "done   raw_playlist_events" in stderr.read_text(errors="replace")


def delete(path: Path) -> int:
    """Delete a file or a folder; the bytes it held."""
    if path.is_file():
        size = path.stat().st_size
        path.unlink()
        return size
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    return size


def run_writer(command: list[str], folder: Path, env: dict[str, str], label: str) -> dict:
    """Write the run's input with ``command``: its seconds, CPU and peak RSS."""
    measured = run_sampled(command, env, folder / "writer.log", label)
    if measured.exit_code != 0:
        raise SystemExit(f"{label} failed; see {folder / 'writer.err'}")
    return {
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_mib": measured.peak_mib(),
    }


def write_csv(folder: Path, fraction: float, seed: int, env: dict[str, str]) -> tuple[Path, dict]:
    csv_path = folder / "spotify_dataset.csv"
    command = [sys.executable, "-m", "ml.sources.kaggle_shaped", "--fraction", str(fraction)]
    command += ["--seed", str(seed), "--out", str(csv_path)]
    return csv_path, run_writer(command, folder, env, "writing the CSV")


def write_mpd_slices(folder: Path, fraction: float, env: dict[str, str]) -> tuple[Path, dict]:
    slices = max(1, round(1_000 * fraction))
    out = folder / "mpd"
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_mpd_ingest.py")]
    command += ["--slices", str(slices), "--out", str(out), "--walked"]
    print(f"  writing {slices} MPD-shaped slices")
    return out, run_writer(command, folder, env, "writing the MPD slices")


def write_source(
    shape: str, folder: Path, fraction: float, seed: int, env: dict[str, str]
) -> tuple[Path, dict, dict]:
    """The run's input, how long writing it took, and its manifest (rows, playlists, ...)."""
    if shape == "mpd":
        source, writer = write_mpd_slices(folder, fraction, env)
        manifest = json.loads(source.with_name("mpd.manifest.json").read_text(encoding="utf-8"))
        return source, writer, {**manifest, "rows": manifest["rows_in_slices"]}
    source, writer = write_csv(folder, fraction, seed, env)
    manifest_file = source.with_name(f"{source.stem}.manifest.json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["malformed"] = {kind: len(lines) for kind, lines in manifest["malformed"].items()}
    return source, writer, manifest


def tutorial_word2vec(folder: Path, env: dict[str, str]) -> dict:
    """The tutorial's Word2Vec (CBOW, 30 epochs, one worker) fitted alone on the split the
    pipeline just encoded, in a process of its own; its seconds and peak RSS."""
    print("  timing the tutorial's Word2Vec on the same train split")
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_word2vec.py")]
    command += [str(folder / "data"), "--workers", "1"]
    measured = run_sampled(command, env, folder / "tutorial.log", "tutorial Word2Vec")
    if measured.exit_code != 0:
        raise SystemExit(f"the tutorial's Word2Vec failed; see {folder / 'tutorial.err'}")
    fitted = json.loads((folder / "tutorial.log").read_text().splitlines()[-1])
    return {**fitted, "process_seconds": measured.seconds, "peak_rss_mib": measured.peak_mib()}


def pipeline_env(folder: Path) -> dict[str, str]:
    """A fresh data folder, Dagster instance and MLflow store, as a new user would have."""
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir()
    # The project's instance settings (telemetry off, the warehouse pool, run queue).
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    return {
        **os.environ,
        "NEXT_TRACK_DATA_DIR": str(folder / "data"),
        "DAGSTER_HOME": str(dagster_home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/data/mlflow/mlflow.db",
        # dagster-dbt runs the `dbt` executable: the one beside this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


@dataclass
class StepEvents:
    starts: list[float] = field(default_factory=list)  # several when the step was retried
    end: float | None = None
    status: str = "UNFINISHED"
    assets: list[tuple[str, float]] = field(default_factory=list)  # (asset, materialized at)
    # Its process's start: the executor launching it to the process announcing itself.
    worker_launched: float | None = None
    worker_started: float | None = None


def read_step_events(dagster_home: Path) -> tuple[dict[str, StepEvents], dict]:
    """Every step of every run in this Dagster instance (a fresh one holds the bench's runs
    only), by whatever key the job gives it; and the runs' own span and their step processes'
    start (the median and the sum over the steps)."""
    import dagster as dg  # only here: --compare needs no Dagster

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    kinds = dg.DagsterEventType
    run_ended = {kinds.RUN_SUCCESS, kinds.RUN_FAILURE, kinds.RUN_CANCELED}
    step_ended = {kinds.STEP_SUCCESS, kinds.STEP_FAILURE, kinds.STEP_SKIPPED}
    runs = instance.get_runs(ascending=True)
    steps: dict[str, StepEvents] = {}
    run_starts, run_ends = [], []
    for run in runs:
        prefix = f"{run.run_id[:8]}:" if len(runs) > 1 else ""
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            kind = event.event_type if event else None
            if kind is kinds.RUN_START:
                run_starts.append(entry.timestamp)
            elif kind in run_ended:
                run_ends.append(entry.timestamp)
            if not event or event.step_key is None:
                continue
            step = steps.setdefault(prefix + event.step_key, StepEvents())
            if kind is kinds.STEP_START:
                step.starts.append(entry.timestamp)
            elif kind in step_ended:
                step.end, step.status = entry.timestamp, kind.value.removeprefix("STEP_")
            elif kind is kinds.ASSET_MATERIALIZATION:
                step.assets.append((event.asset_key.to_user_string(), entry.timestamp))
            elif kind is kinds.STEP_WORKER_STARTING:
                step.worker_launched = entry.timestamp
            elif kind is kinds.STEP_WORKER_STARTED:
                step.worker_started = entry.timestamp
    span = max(run_ends) - min(run_starts) if run_starts and run_ends else None
    process_starts = [
        step.worker_started - step.worker_launched
        for step in steps.values()
        if step.worker_launched is not None and step.worker_started is not None
    ]
    return steps, {
        "dagster_runs": len(runs),
        "dagster_run_seconds": span,
        "step_processes": len(process_starts),
        "step_process_start_median_seconds": (
            statistics.median(process_starts) if process_starts else None
        ),
        "step_process_start_total_seconds": sum(process_starts),
    }


def step_timings(steps: dict[str, StepEvents], measured: Measured) -> list[Timing]:
    """A row per step in start order, under it a row per asset when the step made several."""
    started = sorted((step.starts[0], key, step) for key, step in steps.items() if step.starts)
    if not started:
        return []
    # The interpreter, imports, dbt parse and Dagster's run set-up.
    first = started[0][0]
    timings = [timing("(start-up, before the first step)", "", measured.started, first, measured)]
    for start, key, step in started:
        tries = len(step.starts)
        status = step.status if tries == 1 else f"{step.status} ({tries} tries)"
        timings.append(timing(key, status, start, step.end or measured.ended, measured))
        if len(step.assets) > 1:
            previous = start
            for asset, done in step.assets:
                timings.append(timing(f"  {asset}", "", previous, done, measured))
                previous = done
    return timings


def timing(name: str, status: str, start: float, end: float, measured: Measured) -> Timing:
    return Timing(
        name, status, start - measured.started, end - start, measured.peak_mib(start, end)
    )


def project_settings() -> dict[str, str]:
    """The project's variables set in this environment (DuckDB's memory limit, say), but the
    data folder: each run has its own."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("NEXT_TRACK_") and name != "NEXT_TRACK_DATA_DIR"
    }


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    memory_gib = round(total_kib / 2**20, 1)
    return {"cpus": os.cpu_count(), "memory_gib": memory_gib, "load_1m": os.getloadavg()[0]}


def git_commit() -> str:
    """HEAD's short hash, with ``-dirty`` when tracked files other than Markdown differ from
    it: the figures are then not that commit's (edits to the docs do not change them)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)*.md")
    return f"{commit}-dirty" if changed else commit


def bench(
    shape: str,
    fraction: float,
    seed: int,
    root: Path,
    keep_data: bool,
    config: Path | None = None,
    tutorial: bool = True,
    max_rss_mib: float | None = None,
    drop_input: bool = False,
) -> tuple[BenchResult, Path]:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = "" if shape == "kaggle" else f"{shape}-"
    folder = root / f"{prefix}fraction-{fraction:g}-seed-{seed}-{stamp}"
    folder.mkdir(parents=True)
    print(f"bench-scale: {shape}, fraction {fraction:g}, seed {seed}, in {folder}")
    machine_before = machine()
    env = pipeline_env(folder)
    source, writer, manifest = write_source(shape, folder, fraction, seed, env)
    print(f"  {manifest['rows']:,} rows written in {writer['seconds']:.0f} s; running the pipeline")
    command = [sys.executable, "-m", "orchestration.run", "--source", str(source)]
    command += ["--config", str(config)] if config else []
    dropped = source if drop_input else None
    measured = run_sampled(command, env, folder / "run.log", "pipeline", max_rss_mib, dropped)
    step_events, run_info = read_step_events(folder / "dagster_home")
    pipeline = {
        "exit_code": measured.exit_code,
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_mib": measured.peak_mib(),
        "killed_over_rss_mib": measured.killed_over_mib,
        "disk_growth_gib": measured.disk_growth_bytes / 2**30,
        "input_deleted_after_ingest": drop_input,
        "rows_per_second": manifest["rows"] / measured.seconds,
        "load_1m_at_end": os.getloadavg()[0],  # other work on the machine slows the run
        **run_info,
    }
    yardstick = tutorial_word2vec(folder, env) if tutorial and measured.exit_code == 0 else None
    result = BenchResult(
        shape=shape,
        fraction=fraction,
        seed=seed,
        commit=git_commit(),
        machine=machine_before,
        csv=manifest,
        writer=writer,
        pipeline=pipeline,
        steps=step_timings(step_events, measured),
        summary=(folder / "run.log").read_text(),
        config=str(config) if config else None,
        tutorial_word2vec=yardstick,
        environment=project_settings(),
    )
    if not keep_data:
        if source.exists():
            delete(source)
        shutil.rmtree(folder / "data", ignore_errors=True)
    return result, folder


def print_aligned(headers: list[str], rows: list[list[str]]) -> None:
    """A markdown table, columns padded to their widest cell (the first left-aligned)."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths], *rows]:
        first, *rest = row
        cells = [first.ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        print("| " + " | ".join(cells) + " |")


def print_table(result: BenchResult) -> None:
    csv, pipeline, writer = result.csv, result.pipeline, result.writer
    config = f", config {result.config}" if result.config else ""
    settings = "".join(f", {k}={v}" for k, v in result.environment.items())
    heading = (
        f"{result.shape}, fraction {result.fraction:g} (commit {result.commit}{config}{settings})"
    )
    print(f"\n== bench-scale: {heading} ==")
    if result.shape == "mpd":
        print(
            f"MPD-shaped slices: {csv['slices']:,} files, {csv['slice_megabytes']:,.0f} MB, "
            f"{csv['rows']:,} rows, {csv['playlists']:,} playlists"
        )
    else:
        print(
            f"CSV: {csv['lines']:,} lines, {csv['rows']:,} well-formed, {csv['playlists']:,} "
            f"playlists, {csv['users']:,} users, {csv['distinct_tracks']:,} distinct tracks"
        )
    print(f"machine: {result.machine}\n")
    rows = [
        [t.name, t.status, f"{t.start_offset:.1f}", f"{t.seconds:.1f}", f"{t.peak_rss_mib:,.0f}"]
        for t in result.steps
    ]
    total = [f"{pipeline['seconds']:.1f}", f"{pipeline['peak_rss_mib']:,.0f}"]
    rows.append(["pipeline process (total)", f"exit {pipeline['exit_code']}", "0.0", *total])
    csv_writer = [f"{writer['seconds']:.1f}", f"{writer['peak_rss_mib']:,.0f}"]
    rows.append(["(writing the input, before the pipeline)", "", "", *csv_writer])
    print_aligned(["step / asset", "status", "start s", "seconds", "peak RSS MiB"], rows)
    print(f"disk: the run's file system grew by up to {pipeline['disk_growth_gib']:,.1f} GiB")
    if pipeline.get("killed_over_rss_mib"):
        print(f"killed: the process tree's RSS passed {pipeline['killed_over_rss_mib']:,.0f} MiB")
    print(
        "(indented: the assets of a multi-asset step, each timed from the step's previous event)\n"
        f"{pipeline['rows_per_second']:,.0f} rows/s over the whole pipeline; the Dagster run "
        f"itself {format_seconds(pipeline['dagster_run_seconds'])}; CPU (user + system of the "
        f"process tree) {pipeline['cpu_seconds']:,.0f} s for the pipeline, "
        f"{writer['cpu_seconds']:,.0f} s for the input; load average "
        f"{result.machine['load_1m']:.1f} before, {pipeline['load_1m_at_end']:.1f} after"
    )
    if pipeline.get("step_process_start_median_seconds") is not None:
        print(
            f"step processes: {pipeline['step_processes']}, each started (launched to "
            f"announcing itself) in {pipeline['step_process_start_median_seconds']:.3f} s "
            f"(median), {pipeline['step_process_start_total_seconds']:.1f} s in all"
        )
    tutorial = result.tutorial_word2vec
    if tutorial:
        print(
            "the tutorial's Word2Vec alone on the same train split: fit "
            f"{tutorial['fit_seconds']} s "
            f"(validation hit@10 {tutorial['hit_rate_at_10']}, hit@100 "
            f"{tutorial['hit_rate_at_100']}); the pipeline took "
            f"{pipeline['seconds'] / tutorial['fit_seconds']:.1f}x that"
        )
    marker = result.summary.find("== selected")
    if marker >= 0:
        print("\n" + result.summary[marker:].strip())


def format_seconds(seconds: float | None) -> str:
    return "never started" if seconds is None else f"{seconds:,.1f} s"


def growth(new: float | None, old: float | None) -> str:
    return f"x{new / old:.2f}" if new and old else "-"


def compare(old_path: Path, new_path: Path) -> None:
    """Growth from one saved run to another: per step seconds and RSS, beside the rows' growth."""
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (old_path, new_path))
    print(
        f"rows x{new['csv']['rows'] / old['csv']['rows']:.2f} "
        f"(fraction {old['fraction']:g} -> {new['fraction']:g}); linear growth has the same ratio\n"
    )
    old_steps = {s["name"]: s for s in old["steps"]}
    new_steps = {s["name"]: s for s in new["steps"]}
    names = [*old_steps, *(name for name in new_steps if name not in old_steps)]
    pairs = [(name, old_steps.get(name, {}), new_steps.get(name, {})) for name in names]
    pairs.append(("pipeline process (total)", old["pipeline"], new["pipeline"]))
    # CPU seconds vary less than wall seconds when other work shares the machine.
    cpu = [{"seconds": run["pipeline"].get("cpu_seconds")} for run in (old, new)]
    pairs.append(("pipeline CPU seconds (user + system)", *cpu))
    rows = [
        [
            name,
            f"{a.get('seconds') or 0:,.1f} -> {b.get('seconds') or 0:,.1f}",
            growth(b.get("seconds"), a.get("seconds")),
            f"{a.get('peak_rss_mib') or 0:,.0f} -> {b.get('peak_rss_mib') or 0:,.0f}",
            growth(b.get("peak_rss_mib"), a.get("peak_rss_mib")),
        ]
        for name, a, b in pairs
    ]
    print_aligned(["step / asset", "seconds", "growth", "peak RSS MiB", "growth"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shape", choices=["kaggle", "mpd"], default="kaggle", help="a CSV or MPD slices"
    )
    parser.add_argument("--fraction", type=float, default=0.01, help="of Kaggle's or MPD's size")
    parser.add_argument("--seed", type=int, default=42)
    data_dir = Path(os.environ.get("NEXT_TRACK_DATA_DIR", REPO_ROOT / "data"))
    parser.add_argument("--root", type=Path, default=data_dir / "bench-scale")
    parser.add_argument("--keep-data", action="store_true", help="keep the CSV and warehouse")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD_JSON", "NEW_JSON"))
    parser.add_argument("--config", type=Path, help="a run config YAML, as make run CONFIG=...")
    parser.add_argument(
        "--tutorial",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the pipeline, time the tutorial's Word2Vec alone on its train split",
    )
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        help="kill the pipeline when its process tree's RSS passes this (a run too big for the "
        "machine then fails in the table, in the step that passed it)",
    )
    parser.add_argument(
        "--drop-input-after-ingest",
        action="store_true",
        help="delete the input once ingested (a disk too small for both it and the run)",
    )
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    config = args.config.resolve() if args.config else None
    max_rss_mib = args.max_rss_gib * 1024 if args.max_rss_gib else None
    result, folder = bench(
        args.shape,
        args.fraction,
        args.seed,
        args.root.resolve(),
        args.keep_data,
        config,
        args.tutorial,
        max_rss_mib,
        args.drop_input_after_ingest,
    )
    saved = folder / "bench_scale.json"
    saved.write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    print_table(result)
    print(f"\nsaved {saved}")
    if result.pipeline["exit_code"] != 0:
        errors = (folder / "run.err").read_text().strip().splitlines()
        print("\nthe pipeline failed; the end of its error output:\n  " + "\n  ".join(errors[-8:]))
        print(f"(all of it: {folder / 'run.err'}; its output: {folder / 'run.log'})")
        raise SystemExit(result.pipeline["exit_code"])


if __name__ == "__main__":
    main()

"""Resident memory of processes from /proc (Linux): a process tree's (a pipeline run, a server
and its workers) and the peak of any such measure while it runs. Pages two processes share
(libraries, mapped files) count in each."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20
SAMPLE_SECONDS = 0.5


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except OSError:
        return 0


def process_tree(root: int) -> tuple[int, dict[int, float]]:
    """Resident bytes of ``root`` and all its descendants, and each one's CPU seconds so far
    (user + system), read from /proc."""
    children: dict[int, list[int]] = {}
    cpu_of: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu_of[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    total, cpu, pending = 0, {}, [root]
    while pending:
        pid = pending.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError):
            continue
        cpu[pid] = cpu_of.get(pid, 0.0)
        pending.extend(children.get(pid, []))
    return total, cpu


class PeakMemory(threading.Thread):
    """The peak of each named measure of resident bytes (``measure()``, sampled every half
    second) until ``stopping`` is set."""

    def __init__(self, measures: dict[str, Callable[[], int]]):
        super().__init__(daemon=True)
        self.measures, self.peaks = measures, dict.fromkeys(measures, 0)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, measure in self.measures.items():
                self.peaks[name] = max(self.peaks[name], measure())
            self.stopping.wait(SAMPLE_SECONDS)

    def peaks_mib(self) -> dict[str, float]:
        return {name: round(peak / MIB, 1) for name, peak in self.peaks.items()}

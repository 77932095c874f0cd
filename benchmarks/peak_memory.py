"""Peak RSS of sets of processes while they run (a cluster's services by process group, a server
by process tree): the sum over each set's live processes, sampled every half second. Pages two
processes share (libraries, mapped files) count in each."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from orchestration.processes import alive, all_pids, ancestors

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20
SAMPLE_SECONDS = 0.5


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except OSError:
        return 0


def tree_members(root: int) -> list[int]:
    """``root`` and its live descendants (a server's children may lead process groups of
    their own)."""
    return [pid for pid in all_pids() if root in ancestors(pid) and alive(pid)]


class PeakMemory(threading.Thread):
    """Peak RSS of each named set of processes (``members()`` lists them at each sample) until
    ``stopping`` is set."""

    def __init__(self, sets: dict[str, Callable[[], list[int]]]):
        super().__init__(daemon=True)
        self.sets, self.peaks = sets, dict.fromkeys(sets, 0)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, members in self.sets.items():
                total = sum(rss_bytes(pid) for pid in members())
                self.peaks[name] = max(self.peaks[name], total)
            self.stopping.wait(SAMPLE_SECONDS)

    def peaks_mib(self) -> dict[str, float]:
        return {name: round(peak / MIB, 1) for name, peak in self.peaks.items()}

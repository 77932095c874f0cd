"""What /proc says of this machine's processes (Linux): the few facts run health and the cluster
need, read without a dependency."""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first, then the parent's
    pid, the process group...); None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (exited, not yet reaped by its parent)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])


def ancestors(pid: int) -> set[int]:
    """``pid`` and every process above it."""
    found = set()
    while pid and pid not in found:
        found.add(pid)
        pid = parent_of(pid) or 0
    return found


def started_at(pid: int) -> float | None:
    """Unix seconds at which process ``pid`` started; None when it does not exist."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    with open("/proc/stat", encoding="ascii") as boot:
        boot_time = next(int(line.split()[1]) for line in boot if line.startswith("btime"))
    return boot_time + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for pid in all_pids():
        fields = stat_fields(pid)
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(pid)
    return members

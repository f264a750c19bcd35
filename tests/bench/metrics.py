"""Latency percentiles and a server process's CPU time and memory from /proc."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100)
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads) in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Field 2 (comm) may hold spaces and parentheses; the rest follows the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / _CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (for a PostgreSQL postmaster: its backends)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its live children (children that exited are not counted)."""
    total = cpu_seconds(pid)
    for kid in children_of(pid):
        try:
            total += cpu_seconds(kid)
        except OSError:
            pass
    return total


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (current) and VmHWM (peak) in KiB from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user/nice)
    return (sum(fields[:8]) - fields[3] - fields[4]) / _CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSample:
    server: float | None
    db: float | None
    client: float
    machine: float


class ProcessWatch:
    """Samples the server's (and optionally the database's) CPU time around a phase."""

    def __init__(self, server_pid: int | None, db_pid: int | None) -> None:
        self.server_pid = server_pid
        self.db_pid = db_pid

    def sample(self) -> CpuSample:
        return CpuSample(
            server=cpu_seconds(self.server_pid) if self.server_pid else None,
            db=tree_cpu_seconds(self.db_pid) if self.db_pid else None,
            client=own_cpu_seconds(),
            machine=machine_busy_seconds(),
        )

    def memory(self) -> dict[str, int]:
        return memory_kib(self.server_pid) if self.server_pid else {}

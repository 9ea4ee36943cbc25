"""Memory and CPU of a process and its descendants, read from /proc (Linux)."""
import os
from dataclasses import dataclass
from pathlib import Path

from deployments.haproxy import process as haproxy_process
from deployments.haproxy.config import Paths

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """CPU seconds used so far (user + system, reaped children included)."""
    haproxy_cpu: float
    worker_cpu: float

    def since(self, before: "Usage") -> "Usage":
        return Usage(self.haproxy_cpu - before.haproxy_cpu, self.worker_cpu - before.worker_cpu)


def usage(haproxy: Paths, worker_pids: list[int]) -> Usage:
    master = haproxy_process.master_pid(haproxy)
    return Usage(tree_cpu_seconds(master) if master else 0.0, sum(tree_cpu_seconds(pid) for pid in worker_pids))


def haproxy_rss_mib(haproxy: Paths) -> float:
    master = haproxy_process.master_pid(haproxy)
    return tree_rss_mib(master) if master else 0.0


def tree_rss_mib(pid: int) -> float:
    """Resident memory of the process and its descendants, summed (shared pages count in each)."""
    return sum(_rss_kib(p) for p in _tree(pid)) / 1024


def tree_cpu_seconds(pid: int) -> float:
    return sum(_cpu_ticks(p) for p in _tree(pid)) / TICKS


def _tree(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime: the children it reaped count, so old HAProxy workers
    that ended after a reload are still in the master's figure."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11:15])


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

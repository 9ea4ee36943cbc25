"""Killing the suite's HAProxy the way a crash or the OOM killer would (tests/test_reconcile.py,
tests/test_faults.py)."""
import os
import signal
import socket
import time
from pathlib import Path

from deployments.haproxy import process as haproxy_process, router


def kill_haproxy() -> None:
    """SIGKILL the master and every worker it forked (old ones from reloads included)."""
    master = haproxy_process.master_pid(router.paths())
    children = [int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and _parent_pid(p) == master]
    killed = [master, *children]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    # The master holds the listening sockets too (it hands them to new workers on reload), so
    # the port refuses only once every process has exited; until then a connection is reset.
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)


def _parent_pid(proc_dir: Path) -> int | None:
    fields = _stat_fields(proc_dir)
    return int(fields[1]) if fields else None


def alive(pid: int) -> bool:
    """True until the process has exited: gone from /proc, or a zombie whose files are closed."""
    fields = _stat_fields(Path(f"/proc/{pid}"))
    return bool(fields) and fields[0] != "Z"


def _stat_fields(proc_dir: Path) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, parent pid, ..."""
    try:
        return (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False

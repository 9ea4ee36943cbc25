"""Killing the suite's HAProxy the way a crash or the OOM killer would (tests/faults/test_reconcile.py,
tests/faults/test_faults.py)."""
import os
import signal
import socket
import time
from pathlib import Path

from deployments.traffic import target


def kill_haproxy() -> None:
    """SIGKILL the master and every worker of this suite's HAProxy (old ones from reloads too).
    They are found by the config file on their command line, not as the master's children:
    a worker forked by a reload just before the kill would be missed, and would go on holding
    the port (seen: a connection reset instead of refused). Until every one has exited, the
    port resets connections rather than refusing them, so this waits for that."""
    deadline = time.monotonic() + 5
    while (found := _haproxy_pids()) and time.monotonic() < deadline:
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while any(alive(pid) for pid in found) and time.monotonic() < deadline:
            time.sleep(0.05)


def haproxy_commands() -> list[str]:
    """The command lines of this suite's HAProxy processes still alive (for failure messages)."""
    commands = []
    for pid in _haproxy_pids():
        try:
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass  # it exited meanwhile
    return commands


def _haproxy_pids() -> list[int]:
    config = str(target.paths().config).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if command and command[0].endswith(b"haproxy") and config in command and alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def alive(pid: int) -> bool:
    """True until the process has exited: gone from /proc, or a zombie whose files are closed.
    The files (HAProxy's listening socket) close with the last thread: a multi-threaded process's
    leader shows as a zombie while its other threads still exit, so every thread must be one."""
    proc = Path(f"/proc/{pid}")
    fields = _stat_fields(proc)
    if not fields:
        return False
    try:
        threads = list((proc / "task").iterdir())
    except OSError:
        threads = []
    states = [fields[0]] + [(_stat_fields(thread) or ["Z"])[0] for thread in threads]
    return any(state != "Z" for state in states)


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

"""What is open on a backend's servers, in every HAProxy process: the current worker and the
old ones a reload left serving their connections (they are reached through the master CLI).

The drain needs to tell two kinds of stream apart, which HAProxy's counters cannot (`scur`
counts both, and only in the current worker):
- a request waiting for its response (or still sending its body): the drain waits for it;
- a long-lived stream: a WebSocket (or any Upgrade tunnel, status 101) or a response being
  streamed (an event stream, a download). Waiting for those would wait the whole drain
  timeout; the old release is told to stop (SIGTERM) instead, and closes them its own way.
The answer of `show sess all` gives each stream's backend, server and response status (-1
until the response's headers came), which is all this needs.
"""
import re
import time
from dataclasses import dataclass
from pathlib import Path

from deployments.haproxy import runtime_api

STREAM_START = re.compile(r"^0x[0-9a-f]+: \[")
BACKEND = re.compile(r"^\s+backend=(\S+) ")
SERVER = re.compile(r"^\s+server=(\S+) ")
TXN = re.compile(r"^\s+txn=\S+ .*\bstatus=(-?\d+) ")
SECOND_LOOK_PAUSE = 0.05


@dataclass(frozen=True)
class Stream:
    backend: str
    server: str
    status: int  # the response's status; -1 until its headers came (101: an Upgrade tunnel)

    @property
    def waiting(self) -> bool:
        """A request the old release still has to answer."""
        return self.status < 0


@dataclass(frozen=True)
class OpenStreams:
    waiting: int = 0
    long_lived: int = 0


def parse(answer: str) -> list[Stream]:
    """The streams in an answer of `show sess all` that have a server (a backend connection)."""
    streams, current = [], {}
    for line in answer.splitlines():
        if STREAM_START.match(line):
            _add(streams, current)
            current = {}
        elif found := BACKEND.match(line):
            current["backend"] = found.group(1)
        elif found := SERVER.match(line):
            current["server"] = found.group(1)
        elif found := TXN.match(line):
            current["status"] = int(found.group(1))
    _add(streams, current)
    return streams


def _add(streams: list[Stream], fields: dict) -> None:
    if fields.get("server", "<NONE>") != "<NONE>" and "status" in fields:
        streams.append(Stream(**fields))


def worker_pids(master_socket: Path) -> list[int]:
    """The current worker and the old ones still finishing their connections (`show proc`).
    Asked of the master even while it re-executes, rather than taking the current worker's
    word for all of them."""
    current, old = runtime_api.master_workers(master_socket)
    return current + old


def on_servers(admin_socket: Path, master_socket: Path, backend: str, slots: set[str]) -> OpenStreams:
    """Streams open to these server slots of a backend, summed over every HAProxy process.
    "Nothing waiting" counts only if a second look, a moment later, agrees: while the master
    re-executes for a reload, its answer can miss the old worker that carries the requests."""
    found = _count(admin_socket, master_socket, backend, slots)
    if not found.waiting:
        time.sleep(SECOND_LOOK_PAUSE)
        found = _count(admin_socket, master_socket, backend, slots)
    return found


def _count(admin_socket: Path, master_socket: Path, backend: str, slots: set[str]) -> OpenStreams:
    mine = [stream for answer in _in_every_worker(admin_socket, master_socket, "show sess all")
            for stream in parse(answer) if stream.backend == backend and stream.server in slots]
    waiting = sum(s.waiting for s in mine)
    return OpenStreams(waiting, len(mine) - waiting)


def shut_down(admin_socket: Path, master_socket: Path, servers: list[str]) -> None:
    """`shutdown sessions server` for each backend/slot, in every HAProxy process."""
    for server in servers:
        _in_every_worker(admin_socket, master_socket, f"shutdown sessions server {server}")


def _in_every_worker(admin_socket: Path, master_socket: Path, command: str) -> list[str]:
    """The command's answer from each worker, old ones included. Without a master socket
    (HAProxy started another way), from the current worker alone."""
    try:
        pids = worker_pids(master_socket)
    except runtime_api.HAProxyUnavailable:
        try:
            return [runtime_api.send(admin_socket, command)]
        except runtime_api.HAProxyUnavailable:
            return []  # HAProxy is not running: nothing is open through it
    answers = []
    for pid in pids:
        try:
            answers.append(runtime_api.send(master_socket, f"@!{pid} {command}"))
        except runtime_api.HAProxyUnavailable:
            continue  # an old worker that ended between the two questions has nothing open
    return answers

"""Response times of a canary's old and new servers, from HAProxy's latency ring.

HAProxy's stats give per-server averages only; a canary compares p95. Canary apps' backends log
each request to an in-memory ring (config.py: LATENCY_RING, LATENCY_FORMAT), and this follows it
through the runtime API (`show events RING -w -n`: only new lines, as they come), keeping the
server response times of one backend per kind of slot: "old" (s slots), "new" (c slots),
as a bounded random sample (Reservoir).
A reload ends the stream; the follower connects again and goes on.
"""
import math
import random
import socket
import threading
import time
from pathlib import Path

from deployments.haproxy.config import LATENCY_RING

RECONNECT_SECONDS = 0.2
RESERVOIR_SIZE = 20_000  # values kept per kind and window, whatever the request rate


class Reservoir:
    """A uniform random sample of at most `size` values of a stream (Vitter's algorithm R):
    a percentile of a step of millions of requests in bounded memory and sort time."""

    def __init__(self, size: int = RESERVOIR_SIZE) -> None:
        self.size, self.seen, self.values = size, 0, []

    def add(self, value: int) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = random.randrange(self.seen)
            if slot < self.size:
                self.values[slot] = value

    def percentile(self, percent: float) -> float | None:
        return percentile(self.values, percent)


class LatencyFollower:
    def __init__(self, admin_socket: Path, backend: str) -> None:
        self._socket_path, self._backend = admin_socket, backend
        self._window = {"old": Reservoir(), "new": Reservoir()}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connection: socket.socket | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True, name=f"latency-{backend}")

    def __enter__(self) -> "LatencyFollower":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        if self._connection is not None:
            try:
                self._connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def wait_until_following(self, timeout: float = 2.0) -> None:
        """The stream takes a moment to open; a step's window should not start before."""
        deadline = time.monotonic() + timeout
        while self._connection is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def start_window(self) -> None:
        """Forget what was seen: a canary step compares its own window of traffic."""
        with self._lock:
            self._window = {"old": Reservoir(), "new": Reservoir()}

    def p95(self, kind: str) -> float | None:
        """95th percentile of the server response time (ms) of `kind` ("old", "new") in this window."""
        with self._lock:
            values = list(self._window[kind].values)
        return percentile(values, 95)

    def _follow(self) -> None:
        while not self._stopped.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                    self._connection = connection
                    connection.connect(str(self._socket_path))
                    connection.sendall(f"show events {LATENCY_RING} -w -n\n".encode())
                    self._read(connection)
            except OSError:
                pass
            self._stopped.wait(RECONNECT_SECONDS)

    def _read(self, connection: socket.socket) -> None:
        pending = b""
        while chunk := connection.recv(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._note(line.decode(errors="replace"))

    def _note(self, line: str) -> None:
        """`BACKEND SERVER STATUS TR`; TR is -1 when the server never answered."""
        words = line.split()
        if len(words) != 4 or words[0] != self._backend:
            return
        kind = {"s": "old", "c": "new"}.get(words[1][:1])
        try:
            response_ms = int(words[3])
        except ValueError:
            return
        if kind and response_ms >= 0:
            with self._lock:
                self._window[kind].add(response_ms)


def percentile(samples: list[int], percent: float) -> float | None:
    """Nearest-rank percentile; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)])

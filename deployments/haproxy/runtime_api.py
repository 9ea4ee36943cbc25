"""A client for HAProxy's runtime API (the admin stats socket), its master CLI and its
read-only stats page."""
import http.client
import re
import socket
import time
from pathlib import Path

SOCKET_TIMEOUT = 5.0
# The master re-executes itself on a reload and refuses connections for a moment then.
MASTER_RESTART_WAIT = 3.0
MASTER_RETRY_PAUSE = 0.02
PROC_LINE = re.compile(r"^(\d+)\s+worker\b")
# The runtime API answers errors in prose on the same stream as successes.
ERROR_MARKERS = ("unknown", "no such", "require", "not found", "invalid", "failed", "out of range",
                 "can't", "cannot", "unable", "missing", "expects", "error")


class HAProxyUnavailable(Exception):
    """HAProxy does not answer on its socket (not running, or being restarted)."""


class HAProxyCommandError(Exception):
    """HAProxy answered a runtime command with an error."""


def send(socket_path: Path, command: str, timeout: float = SOCKET_TIMEOUT) -> str:
    """Send one line (commands may be joined with ';') and return the whole answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(socket_path))
            conn.sendall(command.encode() + b"\n")
            # The master CLI keeps a connection open for more commands until the client is
            # done writing; the admin socket answers and closes either way.
            conn.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError, socket.timeout, OSError) as error:
        raise HAProxyUnavailable(f"HAProxy socket {socket_path}: {error}") from error
    return b"".join(chunks).decode(errors="replace")


def send_to_master(master_socket: Path, command: str) -> str:
    """`send` to the master CLI, asked again while the master re-executes (its socket file
    stays, but nothing listens on it): a refused connection delivered nothing, so a second
    try cannot run a command twice. Gives up when the socket is gone or the wait is over."""
    deadline = time.monotonic() + MASTER_RESTART_WAIT
    while True:
        try:
            return send(master_socket, command)
        except HAProxyUnavailable:
            if not master_socket.exists() or time.monotonic() > deadline:
                raise
            time.sleep(MASTER_RETRY_PAUSE)


def master_workers(master_socket: Path) -> tuple[list[int], list[int]]:
    """(the current worker, the old ones still finishing their connections), from the master's
    `show proc`: its "# workers" and "# old workers" sections."""
    current: list[int] = []
    old: list[int] = []
    section = ""
    for line in send_to_master(master_socket, "show proc").splitlines():
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif found := PROC_LINE.match(line):
            (current if section == "workers" else old).append(int(found.group(1)))
    return current, old


def run(socket_path: Path, command: str) -> str:
    """Send a command whose success answer is empty or informational; raise on errors."""
    answer = send(socket_path, command)
    lowered = answer.lower()
    if any(marker in lowered for marker in ERROR_MARKERS):
        raise HAProxyCommandError(f"HAProxy refused {command.split(';')[0]!r}: {answer.strip()}")
    return answer


def is_alive(socket_path: Path) -> bool:
    try:
        return "Pid:" in send(socket_path, "show info", timeout=1.0)
    except HAProxyUnavailable:
        return False


def worker_pid(socket_path: Path) -> int | None:
    try:
        answer = send(socket_path, "show info", timeout=1.0)
    except HAProxyUnavailable:
        return None
    for line in answer.splitlines():
        if line.startswith("Pid:"):
            return int(line.split(":", 1)[1])
    return None


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.socket_path))


def stats_page_csv(stats_socket: Path, timeout: float = 2.0, up_only: bool = False) -> str:
    """The stats page's CSV (HTTP on a unix socket): the same as `show stat`, from an interface
    that cannot change anything; `up_only` leaves out the servers in maintenance or DOWN (`;up`).
    stats.py reads it."""
    connection = _UnixHTTPConnection(stats_socket, timeout)
    try:
        connection.request("GET", "/;csv;norefresh" + (";up" if up_only else ""))
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        raise HAProxyUnavailable(f"HAProxy stats page {stats_socket}: {error}") from error
    finally:
        connection.close()
    if response.status != 200:
        raise HAProxyUnavailable(f"HAProxy stats page {stats_socket}: HTTP {response.status}")
    return body

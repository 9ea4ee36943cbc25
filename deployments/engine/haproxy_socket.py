"""A client for HAProxy's runtime API (the admin stats socket) and its master CLI."""
import csv
import io
import socket
from pathlib import Path

SOCKET_TIMEOUT = 5.0
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
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError, socket.timeout, OSError) as error:
        raise HAProxyUnavailable(f"HAProxy socket {socket_path}: {error}") from error
    return b"".join(chunks).decode(errors="replace")


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


def server_stats(socket_path: Path) -> list[dict[str, str]]:
    """Rows of `show stat` for servers only: pxname, svname, status, scur, stot, hrsp_5xx..."""
    answer = send(socket_path, "show stat")
    reader = csv.DictReader(io.StringIO(answer.lstrip("# ")))
    return [row for row in reader if row.get("svname") not in ("FRONTEND", "BACKEND", None)]


def backend_stats(socket_path: Path) -> dict[str, dict[str, str]]:
    answer = send(socket_path, "show stat")
    reader = csv.DictReader(io.StringIO(answer.lstrip("# ")))
    return {row["pxname"]: row for row in reader if row.get("svname") == "BACKEND"}

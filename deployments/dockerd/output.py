"""A container's output: its last lines, or followed live a line at a time (what the panel shows)."""
from typing import Iterator

import docker.errors
import requests

from deployments.dockerd import daemon


MAX_PENDING_LINE = 64 * 1024  # bytes of a line without its newline yet kept while following output


def _split(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Complete lines of pending + chunk, and what is left of a line not ended yet. That rest is
    bounded: output that never writes a newline would otherwise grow it without end; past
    MAX_PENDING_LINE it goes out as a line of its own, cut, saying so."""
    *complete, pending = (pending + chunk).split(b"\n")
    lines = [line.decode(errors="replace").rstrip("\r") for line in complete]
    if len(pending) > MAX_PENDING_LINE:
        lines.append(pending[:MAX_PENDING_LINE].decode(errors="replace") +
                     f" [line cut: {len(pending) - MAX_PENDING_LINE:,} more bytes without a newline]")
        pending = b""
    return lines, pending


def line_by_line(chunks) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        complete, pending = _split(pending, chunk)
        yield from complete
    if pending:
        yield pending.decode(errors="replace")


def tail(container_id: str, lines: int = 20) -> str:
    try:
        output = daemon.client().api.logs(container_id, tail=lines, stdout=True, stderr=True)
    except docker.errors.NotFound:
        return ""
    return output.decode(errors="replace").rstrip()


class OutputStream:
    """A container's output, followed live, a line at a time. close() from another thread
    shuts the socket down, which ends a blocking read at once (docker's CancellableStream)."""

    def __init__(self, container_id: str, tail: int) -> None:
        self._pending = b""
        self._lines: list[str] = []
        try:
            self._chunks = daemon.logs_client().logs(container_id, stream=True, follow=True, tail=tail)
        except docker.errors.NotFound:
            self._chunks = None
        except (docker.errors.DockerException, requests.RequestException) as error:
            self._chunks = None
            self._lines = [f"(the output cannot be followed: {error})"]

    def next_line(self) -> str | None:
        """The next line, or None when the container stopped or the stream was closed."""
        while not self._lines:
            chunk = next(self._chunks, None) if self._chunks is not None else None
            if chunk is None:
                line, self._pending = self._pending, b""
                return line.decode(errors="replace") if line else None
            self._lines, self._pending = _split(self._pending, chunk)
        return self._lines.pop(0)

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()


def follow_output(container_id: str, tail: int = 200) -> OutputStream:
    return OutputStream(container_id, tail)

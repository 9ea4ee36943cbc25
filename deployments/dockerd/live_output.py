"""A container's output, followed live over Docker's HTTP API without the Docker SDK.

It is the one Docker call the web process makes (GET /containers/ID/logs: through the logs-only
proxy of SWITCHYARD_DOCKER_LOGS_URL in the compose stack, else the local daemon's socket), and it
is written against the API itself so that the web process never loads the SDK, whose every other
call it must not make. urllib3 (under requests already) does the HTTP; what is Docker's own is the
stream's framing: without a TTY (ours never have one) each write comes as an 8-byte header (stream
type, three zero bytes, a big-endian length) and that many bytes.
"""
import os
import socket
import struct
from collections.abc import Iterator
from urllib.parse import quote, urlparse

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection

LOCAL_SOCKET = "/var/run/docker.sock"
CONNECT_TIMEOUT = 10  # seconds; reading has none: a quiet container may say nothing for hours
FRAME_HEADER = struct.Struct(">BxxxL")
READ_SIZE = 16 * 1024
MAX_PENDING_LINE = 64 * 1024  # bytes of a line without its newline yet kept while following output


class _UnixConnection(HTTPConnection):
    """An HTTP connection to a Unix socket (dockerd's), host name aside."""
    socket_path = LOCAL_SOCKET

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def _pool() -> urllib3.HTTPConnectionPool:
    """The Docker API's address: SWITCHYARD_DOCKER_LOGS_URL, else DOCKER_HOST, else the local socket."""
    url = urlparse(settings.SWITCHYARD["DOCKER_LOGS_URL"] or os.environ.get("DOCKER_HOST", "") or
                   f"unix://{LOCAL_SOCKET}")
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=None)
    if url.scheme == "unix":
        connection = type("UnixConnection", (_UnixConnection,), {"socket_path": url.path})
        pool = urllib3.HTTPConnectionPool("localhost", timeout=timeout, retries=False)
        pool.ConnectionCls = connection
        return pool
    return urllib3.HTTPConnectionPool(url.hostname, url.port or 2375, timeout=timeout, retries=False)


class OutputStream:
    """A container's output from its last `tail` lines on, a line at a time. close() from another
    thread shuts the socket down, which ends a blocking read at once."""

    def __init__(self, container_id: str, tail: int) -> None:
        self._lines: list[str] = []
        self._response = None
        self._frames: Iterator[bytes] = iter(())
        self._pending = b""
        path = (f"/containers/{quote(container_id, safe='')}/logs?follow=1&stdout=1&stderr=1&tail={int(tail)}")
        try:
            response = _pool().urlopen("GET", path, preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            self._lines = [f"(the output cannot be followed: {error})"]
            return
        if response.status == 200:
            self._response, self._frames = response, _frames(response)
        elif response.status != 404:  # 404: the container is gone, there is nothing to follow
            self._lines = [f"(the output cannot be followed: Docker answered {response.status})"]

    def next_line(self) -> str | None:
        """The next line, or None when the container stopped or the stream was closed."""
        while not self._lines:
            chunk = next(self._frames, None)
            if chunk is None:
                line, self._pending = self._pending, b""
                return line.decode(errors="replace") if line else None
            self._lines, self._pending = split_lines(self._pending, chunk)
        return self._lines.pop(0)

    def close(self) -> None:
        connection = self._response.connection if self._response is not None else None
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has ended anyway


def split_lines(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
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


def _frames(response) -> Iterator[bytes]:
    """The payloads of Docker's framed stream, until it ends or its socket is shut."""
    buffer = b""
    try:
        for data in response.stream(READ_SIZE):
            buffer += data
            while len(buffer) >= FRAME_HEADER.size:
                _, size = FRAME_HEADER.unpack_from(buffer)
                if len(buffer) < FRAME_HEADER.size + size:
                    break
                yield buffer[FRAME_HEADER.size:FRAME_HEADER.size + size]
                buffer = buffer[FRAME_HEADER.size + size:]
    except (urllib3.exceptions.HTTPError, OSError):
        return  # the socket was shut (close()) or dockerd went away: the output ends here
    finally:
        response.release_conn()


def follow_output(container_id: str, tail: int = 200) -> OutputStream:
    return OutputStream(container_id, tail)

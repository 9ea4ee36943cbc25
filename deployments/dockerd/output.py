"""A container's output, on the worker side: its last lines, and a one-off run's output line by line.
Following it live (what the panel shows) is live_output.py, which the web process loads without the SDK."""
from typing import Iterator

import docker.errors

from deployments.dockerd import daemon
from deployments.dockerd.live_output import split_lines


def line_by_line(chunks) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        complete, pending = split_lines(pending, chunk)
        yield from complete
    if pending:
        yield pending.decode(errors="replace")


def tail(container_id: str, lines: int = 20) -> str:
    try:
        output = daemon.client().api.logs(container_id, tail=lines, stdout=True, stderr=True)
    except docker.errors.NotFound:
        return ""
    return output.decode(errors="replace").rstrip()

"""Probes of a new container before it gets traffic: port open, then HTTP health status, then
(a Compose web service with a `healthcheck`) Docker's health.

Each wait also asks `alive()` between probes, so a container that crashes while we wait
fails the deployment at once instead of at the deadline.
"""
import http.client
import socket
import time
from typing import Callable

# Between two probes of a booting app: how late, at most, verify sees it answer (each probe also
# asks Docker whether the container still runs, a cheap inspect).
PROBE_INTERVAL = 0.05
DOCKER_HEALTH_INTERVAL = 0.2  # Docker itself runs a healthcheck every few seconds at most


class HealthCheckFailed(Exception):
    """The container did not become healthy; the message says what was last seen."""


class ContainerExited(Exception):
    """The container stopped while it was being verified."""


def wait_for_port(ip: str, port: int, deadline: float, alive: Callable[[], bool]) -> None:
    last_error = "no attempt made"
    while True:
        if not alive():
            raise ContainerExited("the container exited before it opened its port")
        try:
            with socket.create_connection((ip, port), timeout=1.0):
                return
        except OSError as error:
            last_error = error.strerror or str(error)
        if time.monotonic() >= deadline:
            raise HealthCheckFailed(f"nothing listens on port {port} (last attempt: {last_error})")
        time.sleep(PROBE_INTERVAL)


def probe(ip: str, port: int, path: str, host: str, timeout: float) -> int:
    """One GET; returns the status code or raises OSError/HTTPException."""
    connection = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "switchyard-health"})
        return connection.getresponse().status
    finally:
        connection.close()


def wait_for_status(ip: str, port: int, path: str, host: str, expected: int, probe_timeout: float,
                    deadline: float, alive: Callable[[], bool]) -> None:
    last_seen = "no answer yet"
    while True:
        if not alive():
            raise ContainerExited("the container exited during the health check")
        try:
            status = probe(ip, port, path, host, probe_timeout)
            if status == expected:
                return
            last_seen = f"status {status}"
        except (OSError, http.client.HTTPException) as error:
            last_seen = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise HealthCheckFailed(f"GET {path} (Host: {host}) did not answer {expected}; last answer: {last_seen}")
        time.sleep(PROBE_INTERVAL)


def wait_for_docker_health(name: str, health: Callable[[], str], deadline: float, alive: Callable[[], bool]) -> None:
    """Until Docker's healthcheck reports the container healthy. "unhealthy" is not final: an app
    slower to boot than interval × retries is reported so before its next probe passes."""
    while True:
        if not alive():
            raise ContainerExited("the container exited before its healthcheck passed")
        status = health()
        if status == "healthy":
            return
        if time.monotonic() >= deadline:
            raise HealthCheckFailed(f"{name}: its healthcheck did not pass in time (Docker reports {status or 'no health'})")
        time.sleep(DOCKER_HEALTH_INTERVAL)

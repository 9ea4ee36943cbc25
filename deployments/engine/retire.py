"""Retiring a release that no longer serves: taken out of service (no new requests, those
waiting for an answer finish up to SWITCHYARD_DRAIN_TIMEOUT), then its containers stopped. One
way for the pipeline's drain and recreate and for reconcile, which retires what a lost worker's
drain would have."""
import time
from typing import Callable

from django.conf import settings

from deployments.dockerd import containers
from deployments.dockerd.values import Container
from deployments.engine import release_files
from deployments.models import Deployment
from deployments.traffic import changes, readings

DRAIN_POLL_INTERVAL = 0.05

Say = Callable[[str], None]


def retire(old: Deployment, *, stop_timeout: int, say: Say,
           before_stop: Callable[[Container], None] = lambda container: None) -> None:
    """Out of service if it still holds its backend, then its containers stopped and removed
    (each given `stop_timeout` seconds after SIGTERM), then whatever its processes left open
    in HAProxy cut, then its files volume, unless a container still uses it."""
    if old.holds_backend:
        take_out_of_service(old, say=say)
    for container in old.containers:
        before_stop(container)  # its pre_stop hooks (engine/hooks.py), once no request reaches it
        containers.stop_and_remove(container.id, timeout=stop_timeout)
    changes.close_sessions(old)  # what its process left open, if anything
    for name in release_files.remove_unused(old.app.name, old.app_id):
        say(f"Removed the files volume {name}")


def take_out_of_service(old: Deployment, *, say: Say) -> None:
    """Maintenance first (no new requests), then let the requests waiting for an answer
    finish, up to the drain timeout; only what is still waiting after that is cut.
    Long-lived streams (WebSockets, event streams) are not waited for: the old release
    gets SIGTERM next and closes them (docs/deployments.md, "Long-lived connections"), and each client
    that reconnects lands on the new release."""
    changes.withdraw_servers(old)
    timeout = settings.SWITCHYARD["DRAIN_TIMEOUT"]
    deadline = time.monotonic() + timeout
    while (open_ := readings.open_streams(old)).waiting and time.monotonic() < deadline:
        time.sleep(DRAIN_POLL_INTERVAL)
    if open_.waiting:
        say(f"Drain timeout ({timeout}s): closing {open_.waiting} request(s) still open on the old release")
        changes.close_sessions(old)
    elif open_.long_lived:
        say(f"No requests in flight; {open_.long_lived} long-lived connection(s) (WebSocket, "
            "streamed response) stay open until the old release stops")
    else:
        say("The old release has no requests in flight")

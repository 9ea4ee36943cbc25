"""Retiring a release that no longer serves: taken out of service (no new requests, those
waiting for an answer finish up to SWITCHYARD_DRAIN_TIMEOUT), then its containers stopped. One
way for the pipeline's drain and recreate and for reconcile, which retires what a lost worker's
drain would have; and the one way a served release's web containers stop (stop_web: a
rollback and a recreate stop theirs with it too), their pre_stop hooks first."""
import time
from typing import Callable

from django.conf import settings

from deployments.dockerd import containers
from deployments.engine import release_files
from deployments.engine.hooks import run_pre_stop, web_pre_stop
from deployments.models import Deployment
from deployments.traffic import changes, readings

DRAIN_POLL_INTERVAL = 0.05

Say = Callable[[str], None]


def retire(old: Deployment, *, stop_timeout: int, say: Say) -> None:
    """Out of service if it still holds its backend, then its containers stopped and removed
    (each given `stop_timeout` seconds after SIGTERM), then whatever its processes left open
    in HAProxy cut, then its files volume, unless a container still uses it."""
    if old.holds_backend:
        take_out_of_service(old, say=say)
    stop_web(old, stop_timeout=stop_timeout, say=say)
    changes.close_sessions(old)  # what its process left open, if anything
    for name in release_files.remove_unused(old.app.name, old.app_id):
        say(f"Removed the files volume {name}")


def stop_web(release: Deployment, *, stop_timeout: int, say: Say, keep: bool = False) -> None:
    """Each web container of a release that served, once no request reaches it: its service's
    pre_stop hooks as the release recorded them (engine/hooks.py), then SIGTERM and `stop_timeout`
    seconds; removed, unless `keep` (a recreate keeps the old release to start it again)."""
    hooks = web_pre_stop(release)
    for container in release.containers:
        run_pre_stop(hooks, service=release.app.web_service, container_id=container.id,
                     grace_seconds=stop_timeout, say=say)
        if keep:
            containers.stop(container.id, timeout=stop_timeout)
        else:
            containers.stop_and_remove(container.id, timeout=stop_timeout)


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

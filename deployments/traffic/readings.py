"""What HAProxy counts for an app or a deployment, read through the adapter's typed stats: its
servers' health, the answers of its backends and of a canary's slots, what is still open on a
release's servers. Reads only; a change goes through changes.py."""
from deployments.haproxy import runtime_api, sessions, stats
from deployments.haproxy.config import slot_name
from deployments.haproxy.stats import Responses, ServerHealth
from deployments.models import App, Deployment
from deployments.traffic import target
from deployments.traffic.table import COLOURS, MAX_REPLICAS


def servers(app: App, colour: str, count: int = MAX_REPLICAS) -> list[ServerHealth]:
    """The first `count` primary slots of a backend (s1, s2, ...), in order."""
    primaries = [server for server in stats.servers(target.paths().admin_socket, app.backend_name(colour))
                 if server.slot.startswith("s")]
    return primaries[:count]


def backend_responses(app: App) -> dict[str, Responses]:
    """Per colour, the answers of the whole backend, HAProxy's own 503s included."""
    return {colour: stats.backend_totals(target.paths().admin_socket, app.backend_name(colour)) or Responses()
            for colour in COLOURS}


def canary_responses(app: App, colour: str, count_old: int, count_new: int) -> tuple[Responses, Responses]:
    """Answers of the old release's servers (s slots) and of the canary's (c slots) in the live
    backend `colour`."""
    slots = stats.servers(target.paths().admin_socket, app.backend_name(colour))
    old = [server for server in slots if server.slot.startswith("s")][:count_old]
    new = [server for server in slots if server.slot.startswith("c")][:count_new]
    return stats.answered(old), stats.answered(new)


def live_health(apps: list[App]) -> dict[str, str]:
    """Per app, HAProxy's view of its live servers: "UP", "DOWN" (some or all down),
    "no release", or "unknown" when HAProxy does not answer. One read of the stats page for
    all: the panel calls this, and needs neither HAProxy's files nor its admin socket."""
    try:
        up = stats.page_up_servers(target.paths().stats_socket)
    except runtime_api.HAProxyUnavailable:
        return {app.name: "unknown" for app in apps}
    summary = {}
    for app in apps:
        if app.live_deployment_id is None:
            summary[app.name] = "no release"
            continue
        wanted = {slot_name(i) for i in range(len(app.live_deployment.containers) if app.live_deployment else 0)}
        summary[app.name] = "UP" if wanted and wanted <= up.get(app.backend_name(app.live_colour), set()) else "DOWN"
    return summary


def open_streams(deployment: Deployment) -> sessions.OpenStreams:
    """What is open on a deployment's servers: requests waiting for their answer, and
    long-lived streams (WebSockets, streamed responses), in the old HAProxy workers too."""
    location = target.paths()
    return sessions.on_servers(location.admin_socket, location.master_socket,
                               deployment.app.backend_name(deployment.colour),
                               {slot_name(i) for i in range(len(deployment.containers))})

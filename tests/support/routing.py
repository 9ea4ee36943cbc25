"""What the worker would route and what HAProxy's files hold: for web tests that check a request
handed routing to the worker (ROUTING among the `handed_over` tasks) or changed nothing."""
from deployments.haproxy.config import render_map
from deployments.traffic import rows, target

ROUTING = ("deployments.tasks.apply_routing", ())


def routed(entry: str) -> bool:
    """Whether the map the worker writes from the database has `entry` ("host backend")."""
    return entry in render_map(rows.app_routes())


def haproxy_files() -> tuple[str | None, str | None]:
    location = target.paths()
    return tuple(p.read_text() if p.exists() else None for p in (location.config, location.hosts_map))

"""HAProxy's verdict on a value before it is stored: an app's settings and domains, an uploaded
certificate. Each check renders into a directory of its own: nothing HAProxy serves from is touched."""
import dataclasses
import tempfile
from pathlib import Path

from django.conf import settings

from deployments.haproxy import files, process, tls
from deployments.haproxy.config import Paths, UnsafeValue, check_route, render_config, render_map, served_certificates
from deployments.models import App, Certificate
from deployments.traffic import rows, target
from deployments.traffic.table import COLOURS, AppRoute, Backend, HealthCheck


def check_certificate(app: App, chain_pem: str, key_pem: str, names: tuple[str, ...]) -> str:
    """HAProxy's own verdict on an uploaded certificate (not stored yet) of the app: `haproxy -c`
    on the exact crt-list line it would get, the app's hosts it covers (`names`) as SNI filters.
    Returns what the verdict is remembered by (Tls.verdict_key); raises HAProxyConfigInvalid."""
    held = rows.held_tls(app, Certificate(domains=list(names)), tls.bundle(chain_pem, key_pem))
    route = AppRoute(name=app.name, hostnames=tuple(app.hostnames()), live_colour=app.live_colour, tls=held)
    process.check_certificate(served_certificates([route], rows.panel_route()).get(app.name, held))
    return held.verdict_key


def check_app_config(app: App, domains: list[str]) -> None:
    """Raise HAProxyConfigInvalid unless HAProxy accepts the config as it would be with `app`
    (saved or not) and its `domains` in place of what is stored. Run before a row is saved,
    so a value HAProxy refuses is refused here and never reaches a file or a reload.

    Both colours get the app's own health check (the next deployment's), and the config is
    rendered into a directory of its own: nothing HAProxy reads is touched.
    """
    backend = Backend(health=HealthCheck(**app.current_health_check()))
    own = (app.default_hostname,) if settings.SWITCHYARD["LOCALHOST_NAMES"] else ()
    hostnames = (*own, *domains)
    served = rows.served_tls(app) if app.pk else None  # its certificate, with these domains as SNI filters
    if served:
        served = dataclasses.replace(served, covered=tuple(h for h in hostnames if app.certificate.covers(h)))
    route = AppRoute(name=app.name, hostnames=hostnames, live_colour=app.live_colour,
                     backends={colour: backend for colour in COLOURS}, tls=served)
    try:
        check_route(route)  # rendering would leave out what it cannot quote; here that is an error
    except UnsafeValue as error:
        raise process.HAProxyConfigInvalid(str(error)) from error
    routes = [other for other in rows.app_routes() if other.name != app.name] + [route]
    with tempfile.TemporaryDirectory(prefix="switchyard-check-") as directory:
        location = Paths(Path(directory))
        panel = rows.panel_route()
        # HAProxy opens what the config names
        files.write_referenced_files(location, routes, target.paths().default_certificate, panel)
        location.hosts_map.write_text(render_map(routes))
        location.config.write_text(render_config(routes, location, target.binds(), panel, checks=rows.check_timing()))
        process.check_config(location.config)

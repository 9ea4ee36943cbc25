"""Routing: what HAProxy sends where, kept equal in three places.

The database says which deployment holds which colour of an app and which colour is
live. Those rows belong to the deployment's owner (the pipeline, reconcile, lifecycle.py):
each change here takes a `record` function that stores them, and runs, under one Redis lock:
  1. record() (the rows),
  2. renders config and map from the database and writes both files (atomic rename),
  3. tells the running HAProxy the same thing through the runtime API
     (or reloads it when the config's structure changed, e.g. a new app).
So a reload or restart at any moment lands on the routing the runtime already had.
The switch is the one exception to that order (see switch_to): it is on the path between
"healthy" and "serving", so it tells HAProxy first and writes file and rows right after,
still under the lock, so nobody else ever sees the three differ.
A certificate HAProxy refuses never stops it for the other apps: the render leaves out one
whose refusal is stored, and a config refused before a start or reload is rendered again
without those that fail their own check (_write_loadable_files).
"""
import dataclasses
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.conf import settings

from deployments.haproxy import process as haproxy_process, runtime_api, sessions, stats, tls
from deployments.haproxy.stats import Responses, ServerHealth
from deployments.haproxy.config import (
    AppRoute,
    Backend,
    Binds,
    HealthCheck,
    PANEL_CERTIFICATE,
    PanelRoute,
    Paths,
    Server,
    UnsafeValue,
    backup_slot_name,
    canary_slot_name,
    check_route,
    crt_list_line,
    hsts_entries,
    map_entries,
    map_text,
    parse_map,
    redirect_entries,
    render_config,
    render_crt_list,
    render_map,
    route_app_to,
    served_certificates,
    slot_name,
    Tls,
)
from deployments.containers import Container
from deployments.engine.locks import router_lock
from deployments.models import COLOURS, MAX_REPLICAS, App, Certificate, Deployment

log = logging.getLogger(__name__)

Record = Callable[[], None]  # stores the rows a routing change follows from; run under the lock

MAP_BATCH_BYTES = 8 * 1024  # of commands per runtime-API line: well under HAProxy's 16 KiB buffer
# What a runtime command changes in a server line: address, weight, disabled. The rest (check,
# backup, cookie) follows from lines and slot names that a reload is needed for.
SERVER_LINE = re.compile(r"^(    server \S+) .*$", re.MULTILINE)


def paths() -> Paths:
    return Paths(Path(settings.SWITCHYARD["HAPROXY_DIR"]), stats=settings.SWITCHYARD["HAPROXY_STATS_SOCKET"])


def snapshot() -> list[AppRoute]:
    """Routing as the database describes it. A colour held by a deployment is checked the way
    that deployment was verified, so editing the health path never fails a live release."""
    holders = {(d.app_id, d.colour): d for d in
               Deployment.objects.filter(holds_backend=True).select_related("previous").order_by("id")}
    return [_route(app, holders) for app in App.objects.prefetch_related("domains").select_related("certificate")]


def _route(app: App, holders: dict[tuple[int, str], Deployment]) -> AppRoute:
    """A canary (a holder with canary_percent) puts its containers into the other colour's
    backend, the live one, as c slots."""
    backends = {}
    canaries = {app.idle_colour_of(d.colour): d for d in holders.values() if d.app_id == app.id and d.canary_percent}
    for colour in COLOURS:
        holder, canary = holders.get((app.id, colour)), canaries.get(colour)
        health = HealthCheck(**(holder.health_check if holder and holder.health_check else app.current_health_check()))
        servers = _servers(holder.containers) if holder else ()
        backups = _servers(holder.previous.containers) if holder and holder.serves_backup and holder.previous else ()
        backends[colour] = Backend(health=health, servers=servers, backups=backups,
                                   canaries=_servers(canary.containers) if canary else (),
                                   canary_percent=canary.canary_percent if canary else 0)
    return AppRoute(name=app.name, hostnames=tuple(app.hostnames()), live_colour=app.live_colour, backends=backends,
                    tls=_tls(app), canary=bool(app.canary_steps or canaries))


def _tls(app: App) -> Tls | None:
    """How HAProxy serves the app's certificate, if it has one it can serve now: one that ran
    out, was stored around the upload's checks or that HAProxy refused is left out, so that
    HAProxy still starts for every app; the app page says why (presenters.certificate)."""
    certificate = getattr(app, "certificate", None)
    if certificate is None or not certificate.chain_pem:
        return None
    held = _held(app, certificate)
    problem = _left_out(certificate, held)
    if problem:
        log.warning("certificate of %s left out of HAProxy: %s", app.name, problem)
        return None
    return held


def _held(app: App, certificate: Certificate, pem: str | None = None) -> Tls:
    """The certificate as HAProxy would serve it for the app: on the app's hosts it covers.
    pem: an upload's (not stored yet); else the stored one's."""
    return Tls(covered=tuple(host for host in app.hostnames() if certificate.covers(host)), redirect=app.https_redirect,
               hsts=app.hsts, pem=tls.bundle(certificate.chain_pem, certificate.key_pem) if pem is None else pem)


def _left_out(certificate: Certificate, held: Tls) -> str:
    """Why a stored certificate is not served ("" if it is): tls.unservable's reasons, or HAProxy
    refused it on this crt-list line when it last checked it (a stored verdict: no check runs here)."""
    problem = tls.unservable(certificate.chain_pem, certificate.key_pem, certificate.not_after)
    refusal = "" if problem else certificate.haproxy_refused(held.verdict_key)
    return problem or (f"HAProxy refused it ({refusal})" if refusal else "")


def certificate_problem(app: App, certificate: Certificate) -> str:
    """Why the app's stored certificate is not served, "" if it is: for the app page and the API."""
    return _left_out(certificate, _held(app, certificate))


def check_certificate(app: App, chain_pem: str, key_pem: str, names: tuple[str, ...]) -> str:
    """HAProxy's own verdict on an uploaded certificate (not stored yet) of the app: `haproxy -c`
    on the exact crt-list line it would get, the app's hosts it covers (`names`) as SNI filters.
    Returns what the verdict is remembered by (Tls.verdict_key); raises HAProxyConfigInvalid."""
    held = _held(app, Certificate(domains=list(names)), tls.bundle(chain_pem, key_pem))
    route = AppRoute(name=app.name, hostnames=tuple(app.hostnames()), live_colour=app.live_colour, tls=held)
    haproxy_process.check_certificate(served_certificates([route], panel_route()).get(app.name, held))
    return held.verdict_key


def panel_route() -> PanelRoute | None:
    """The panel on SWITCHYARD_PANEL_DOMAIN, with its certificate (the row without an app) once
    one is valid. Plain HTTP to it always redirects to HTTPS: a password never crosses the
    network in clear, even before the certificate comes (HTTPS has the self-signed default then)."""
    domain = settings.SWITCHYARD["PANEL_DOMAIN"]
    if not domain:
        return None
    host, port = settings.SWITCHYARD["PANEL_BIND"]
    certificate = Certificate.objects.filter(app=None).first()
    served = None
    if certificate and certificate.chain_pem and certificate.covers(domain):
        served = Tls(covered=(domain,), redirect=True, hsts=False,
                     pem=tls.bundle(certificate.chain_pem, certificate.key_pem))
        if _left_out(certificate, served):
            served = None
    return PanelRoute(hostname=domain, server=Server(LOOPBACK_FOR.get(host, host), port), tls=served)


LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # a bind on every address answers there


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
    served = _tls(app) if app.pk else None  # its certificate, with these domains as SNI filters
    if served:
        served = dataclasses.replace(served, covered=tuple(h for h in hostnames if app.certificate.covers(h)))
    route = AppRoute(name=app.name, hostnames=hostnames, live_colour=app.live_colour,
                     backends={colour: backend for colour in COLOURS}, tls=served)
    try:
        check_route(route)  # rendering would leave out what it cannot quote; here that is an error
    except UnsafeValue as error:
        raise haproxy_process.HAProxyConfigInvalid(str(error)) from error
    routes = [other for other in snapshot() if other.name != app.name] + [route]
    with tempfile.TemporaryDirectory(prefix="switchyard-check-") as directory:
        location = Paths(Path(directory))
        panel = panel_route()
        write_referenced_files(location, routes, paths().default_certificate, panel)  # HAProxy opens what the config names
        location.hosts_map.write_text(render_map(routes))
        location.config.write_text(render_config(routes, location, binds(), panel))
        haproxy_process.check_config(location.config)


def _servers(containers: list[Container]) -> tuple[Server, ...]:
    return tuple(Server(c.ip, c.port) for c in containers)


def publish_servers(deployment: Deployment, record: Record) -> None:
    """Put a deployment's containers into its colour's backend (they start health checks).
    record: stores that the deployment holds its backend."""
    with router_lock():
        record()
        commands = []
        for index, container in enumerate(deployment.containers):
            server = f"{deployment.app.backend_name(deployment.colour)}/{slot_name(index)}"
            commands += [f"set server {server} addr {container.ip} port {container.port}",
                         f"set server {server} state ready"]
        _apply(server_commands=commands)


def withdraw_servers(deployment: Deployment, record: Record) -> None:
    """No new requests to a deployment's servers; those in flight carry on (see open_streams).
    record: stores that it no longer holds its backend."""
    with router_lock():
        record()
        backend = deployment.app.backend_name(deployment.colour)
        _apply(server_commands=[f"set server {backend}/{slot_name(i)} state maint"
                                for i in range(len(deployment.containers))])


def close_sessions(deployment: Deployment) -> None:
    """Cut what is still open on a withdrawn deployment's servers, in every HAProxy process
    (the drain timeout passed, or its containers stopped)."""
    backend = deployment.app.backend_name(deployment.colour)
    location = paths()
    sessions.shut_down(location.admin_socket, location.master_socket,
                       [f"{backend}/{slot_name(i)}" for i in range(len(deployment.containers))])


def publish_backups(deployment: Deployment, record: Record) -> None:
    """The previous release's containers become `backup` servers of the new release's backend.
    record: stores that the deployment serves them as backups."""
    with router_lock():
        record()
        backend = deployment.app.backend_name(deployment.colour)
        commands = []
        for index, container in enumerate(deployment.previous.containers):
            server = f"{backend}/{backup_slot_name(index)}"
            commands += [f"set server {server} addr {container.ip} port {container.port}",
                         f"set server {server} state ready"]
        _apply(server_commands=commands)


def withdraw_backups(deployment: Deployment, record: Record) -> None:
    """record: stores that the deployment serves no backups any more."""
    with router_lock():
        record()
        backend = deployment.app.backend_name(deployment.colour)
        _apply(server_commands=[f"set server {backend}/{backup_slot_name(i)} state maint" for i in range(MAX_REPLICAS)])


def publish_canary(deployment: Deployment, record: Record) -> None:
    """The deployment's containers into the live backend's c slots, with weights that give them
    deployment.canary_percent of its requests (0: out again, the old release takes them all).
    Clients keep the server they got (a cookie); only new clients follow a changed weight.
    record: stores canary_percent."""
    with router_lock():
        record()
        live = deployment.app.idle_colour_of(deployment.colour)
        route = next(r for r in snapshot() if r.name == deployment.app.name)
        _apply(server_commands=_canary_commands(route.backend(live), route.backends[live]))


def _canary_commands(backend_name: str, backend: Backend) -> list[str]:
    """Weights first, then the c slots' addresses and state, so that no request meets a new
    server at the weight of an old one."""
    old_weight, new_weight = backend.weights()
    commands = [f"set server {backend_name}/{slot_name(i)} weight {old_weight}" for i in range(len(backend.servers))]
    commands += [f"set server {backend_name}/{canary_slot_name(i)} weight {new_weight or 1}"
                 for i in range(len(backend.canaries))]
    return commands + _slot_commands(backend_name, backend.canaries if backend.canary_percent else (), canary_slot_name)


def switch_to(deployment: Deployment, go_live: Callable[[], Record]) -> float:
    """Point every host of the app at the deployment's colour: one atomic map commit.
    go_live stores the deployment as the app's live release and returns what undoes that.
    Returns when HAProxy had the new routing (time.monotonic()).

    This runs between "healthy" and "serving", so the runtime goes first and nothing is
    queried or rendered before it: under this lock the map file is the database's routing
    rendered (every change writes it), so the new map is that file with the app's hosts
    pointed at the new colour. The file and the database follow under the same lock, before
    the switch counts as done; if anything fails, HAProxy gets the database's map back.
    """
    app, colour = deployment.app, deployment.colour
    with router_lock():
        location = paths()
        undo = None
        try:
            entries = route_app_to(parse_map(_read(location.hosts_map)), app.name, colour)
            if entries is not None and _pushed_route(location, entries, app.backend_name(colour)):
                routed_at = time.monotonic()
                _atomic_write(location.hosts_map, map_text(entries))
                undo = go_live()
            else:  # no map file yet, or HAProxy down or refusing: the full way (it starts HAProxy if needed)
                undo = go_live()
                _apply(push_map=True)
                routed_at = time.monotonic()
        except Exception:
            if undo:
                undo()
            _apply_quietly(push_map=True)
            raise
    return routed_at


def _pushed_route(location: Paths, entries: list[tuple[str, str]], backend: str) -> bool:
    """Tell HAProxy the app's hosts now go to `backend`. One host: `set map`, atomic by itself
    and one round trip. Several: a versioned commit of the whole map, so they all switch at
    the same instant. False if HAProxy is down or refused (the caller then takes the full way)."""
    hosts = [host for host, target in entries if target == backend]
    try:
        if len(hosts) == 1:
            runtime_api.run(location.admin_socket, f"set map {location.hosts_map} {hosts[0]} {backend}")
        else:
            _push_map(location, entries)
    except (runtime_api.HAProxyUnavailable, runtime_api.HAProxyCommandError):
        return False
    return True


def install_certificates(record: Record) -> None:
    """After a certificate was issued, renewed, uploaded or removed (record() stores that):
    its file, the crt-list and the redirect and HSTS maps, and the same in the running HAProxy
    through the runtime API, without a reload."""
    with router_lock():
        record()
        _apply(push_map=True, start_if_down=False)


CHALLENGE_WORD = re.compile(r"[A-Za-z0-9_.-]{1,400}")


def publish_challenge(token: str, key_authorization: str) -> None:
    """HAProxy answers GET /.well-known/acme-challenge/TOKEN with the key authorization, on
    every host, before any app sees the request (map file first, then the runtime)."""
    if not (CHALLENGE_WORD.fullmatch(token) and CHALLENGE_WORD.fullmatch(key_authorization)):
        raise UnsafeValue("an ACME token or key authorization is not one word of base64url")
    _change_challenges(lambda entries: [*(e for e in entries if e[0] != token), (token, key_authorization)],
                       f"add map {{map}} {token} {key_authorization}")


def withdraw_challenge(token: str) -> None:
    if not CHALLENGE_WORD.fullmatch(token):
        return
    _change_challenges(lambda entries: [e for e in entries if e[0] != token], f"del map {{map}} {token}")


def _change_challenges(change, command: str) -> None:
    with router_lock():
        location = paths()
        _atomic_write(location.challenges_map, map_text(change(parse_map(_read(location.challenges_map)))))
        try:
            runtime_api.send(location.admin_socket, command.format(map=location.challenges_map))
        except runtime_api.HAProxyUnavailable:
            pass  # a starting HAProxy reads the file


def sync_all(start: bool | None = None) -> None:
    """Make HAProxy equal the database: start it if it is down (see _apply), reload if its
    config's structure changed, and push every map entry and server slot."""
    with router_lock():
        routes = snapshot()
        _apply(push_map=True, server_commands=_all_server_commands(routes), start_if_down=start)


def refresh_config() -> None:
    """After apps were added, changed or deleted: new files, and a reload if HAProxy runs.
    Does not start HAProxy: creating an app from the CLI must not leave a proxy behind."""
    with router_lock():
        _apply(push_map=True, start_if_down=False)


def servers(app: App, colour: str, count: int = MAX_REPLICAS) -> list[ServerHealth]:
    """The first `count` primary slots of a backend (s1, s2, ...), in order."""
    primaries = [server for server in stats.servers(paths().admin_socket, app.backend_name(colour))
                 if server.slot.startswith("s")]
    return primaries[:count]


def backend_responses(app: App) -> dict[str, Responses]:
    """Per colour, the answers of the whole backend, HAProxy's own 503s included."""
    return {colour: stats.backend_totals(paths().admin_socket, app.backend_name(colour)) or Responses()
            for colour in COLOURS}


def canary_responses(app: App, colour: str, count_old: int, count_new: int) -> tuple[Responses, Responses]:
    """Answers of the old release's servers (s slots) and of the canary's (c slots) in the live
    backend `colour`."""
    slots = stats.servers(paths().admin_socket, app.backend_name(colour))
    old = [server for server in slots if server.slot.startswith("s")][:count_old]
    new = [server for server in slots if server.slot.startswith("c")][:count_new]
    return stats.total(old), stats.total(new)


def live_health(apps: list[App]) -> dict[str, str]:
    """Per app, HAProxy's view of its live servers: "UP", "DOWN" (some or all down),
    "no release", or "unknown" when HAProxy does not answer. One read of the stats page for
    all: the panel calls this, and needs neither HAProxy's files nor its admin socket."""
    try:
        rows = stats.page_servers(paths().stats_socket)
    except runtime_api.HAProxyUnavailable:
        return {app.name: "unknown" for app in apps}
    summary = {}
    for app in apps:
        if app.live_deployment_id is None:
            summary[app.name] = "no release"
            continue
        wanted = len(app.live_deployment.containers) if app.live_deployment else 0
        statuses = [r.status for r in rows if r.backend == app.backend_name(app.live_colour)][:wanted]
        summary[app.name] = "UP" if statuses and all(s.startswith("UP") for s in statuses) else "DOWN"
    return summary


def open_streams(deployment: Deployment) -> sessions.OpenStreams:
    """What is open on a deployment's servers: requests waiting for their answer, and
    long-lived streams (WebSockets, streamed responses), in the old HAProxy workers too."""
    location = paths()
    return sessions.on_servers(location.admin_socket, location.master_socket,
                               deployment.app.backend_name(deployment.colour),
                               {slot_name(i) for i in range(len(deployment.containers))})


@dataclass(frozen=True)
class Written:
    """What HAProxy's files were rendered from."""
    routes: list[AppRoute]
    panel: PanelRoute | None
    structure_changed: bool  # the config changed beyond server addresses and states


def _apply(push_map: bool = False, server_commands: list[str] | None = None, start_if_down: bool | None = None) -> None:
    """Write the files from the database, then bring HAProxy to the same state: start it if it
    is down, reload it if the config's structure changed, else runtime commands.
    start_if_down None: start a stopped HAProxy unless SWITCHYARD_HAPROXY_SUPERVISED says only
    `manage.py haproxy` may (in the compose stack a worker's container would own the process)."""
    if start_if_down is None:
        start_if_down = not settings.SWITCHYARD["HAPROXY_SUPERVISED"]
    location = paths()
    running = haproxy_process.is_running(location)
    # Before a start the config is checked even if unchanged: an older version's, or one naming a
    # certificate that this HAProxy refuses.
    written = _write_loadable_files(location, check=start_if_down and not running)
    if not running:
        if start_if_down:
            haproxy_process.start(location)  # a fresh process reads the complete state from the files
        return
    if written.structure_changed:  # checked before it replaced the old config
        haproxy_process.reload(location)
        return
    if push_map:
        _push_map(location, map_entries(written.routes))
        if not _pushed_tls(location, written):
            _write_loadable_files(location, check=True)  # the reload reads every certificate's file: checked first
            haproxy_process.reload(location)
            return
    for line in _joined_in_batches(server_commands or []):
        runtime_api.run(location.admin_socket, line)


def _pushed_tls(location: Paths, written: Written) -> bool:
    """_push_tls; if HAProxy refuses a certificate there, again once the certificates it refuses
    on their own are found and left out (_write_loadable_files)."""
    try:
        return _push_tls(location, written.routes, written.panel)
    except runtime_api.HAProxyCommandError as error:
        log.error("HAProxy refused a certificate change (%s); checking each certificate on its own", error)
        written = _write_loadable_files(location, check=True)
        return _push_tls(location, written.routes, written.panel)


def _write_loadable_files(location: Paths, check: bool) -> Written:
    """Render the database into HAProxy's files (_write_files). If HAProxy refuses the config they
    make, each certificate is checked on its own (_record_verdicts) and the files are rendered
    again without those it refuses: one certificate (a row written around the upload's checks,
    one that a newer HAProxy no longer loads) must not keep HAProxy from starting or reloading
    for every app. Raises HAProxyConfigInvalid if it refuses the config without them too.
    check: `haproxy -c` the config even if it is unchanged (before a start or a reload)."""
    routes, panel = snapshot(), panel_route()
    try:
        return Written(routes, panel, _write_files(location, routes, panel, check))
    except haproxy_process.HAProxyConfigInvalid as error:
        if not _record_verdicts(routes, panel):
            raise
        log.error("HAProxy refused its config (%s); rendering it again without the certificates it refuses", error)
        routes, panel = snapshot(), panel_route()  # the render reads the verdicts just stored
        return Written(routes, panel, _write_files(location, routes, panel, check))


def _record_verdicts(routes: list[AppRoute], panel: PanelRoute | None) -> list[str]:
    """Every served certificate checked by HAProxy on its own, on its crt-list line (whatever
    verdict was stored: HAProxy may have changed since), and each verdict stored by the key the
    render reads (_left_out). Returns the names of those it refuses (logged)."""
    keys = {route.name: route.tls.verdict_key for route in routes if route.tls}
    if panel and panel.tls:
        keys[PANEL_CERTIFICATE] = panel.tls.verdict_key
    refusals = haproxy_process.certificate_refusals(served_certificates(routes, panel))
    for name, refusal in refusals.items():
        _certificate_row(name).update(haproxy_checked=keys[name], haproxy_refusal=refusal)
        if refusal:
            log.error("certificate of %s left out of HAProxy: HAProxy refuses it on its own (%s)", name, refusal)
    return [name for name, refusal in refusals.items() if refusal]


def _certificate_row(name: str):
    """The Certificate rows (one) of a certificate file's name: an app's, or the panel's."""
    rows = Certificate.objects
    return rows.filter(app=None) if name == PANEL_CERTIFICATE else rows.filter(app__name=name)


def _apply_quietly(**kwargs) -> None:
    try:
        _apply(**kwargs)
    except Exception:  # the caller is already failing with the first error; this is clean-up
        pass


def binds() -> Binds:
    return Binds(http=settings.SWITCHYARD["HTTP_BIND"], https=settings.SWITCHYARD["HTTPS_BIND"],
                 metrics=settings.SWITCHYARD["HAPROXY_METRICS_BIND"], exporter=haproxy_process.has_prometheus_exporter())


def _write_files(location: Paths, routes: list[AppRoute], panel: PanelRoute | None, check: bool = False) -> bool:
    """Write config, maps and certificates; return whether the config changed beyond server
    addresses/state. A changed config is checked (`haproxy -c`) in a temporary file beside
    haproxy.cfg and only then renamed over it, before the host map: if HAProxy refuses it,
    neither file is replaced. What the config names is written first (HAProxy's check opens it).
    check: an unchanged config is checked too (the certificates it names may have changed)."""
    location.directory.mkdir(parents=True, exist_ok=True)
    config = render_config(routes, location, binds(), panel)
    hosts_map = render_map(routes)
    previous = _read(location.config)
    write_referenced_files(location, routes, panel=panel)
    structure_changed = SERVER_LINE.sub(r"\1", previous) != SERVER_LINE.sub(r"\1", config)
    if config != previous:
        if not location.hosts_map.exists():
            _atomic_write(location.hosts_map, hosts_map)
        # Server lines carry only what this module puts there (address, weight, disabled), and a
        # check takes ~0.3 s: too long between "worse" and "all traffic back" in a canary.
        _atomic_write(location.config, config,
                      check=haproxy_process.check_config if structure_changed or check else None)
    elif check:
        haproxy_process.check_config(location.config)
    _write_if_changed(location.hosts_map, hosts_map)
    return structure_changed


def write_referenced_files(location: Paths, routes: list[AppRoute], default_certificate: Path | None = None,
                           panel: PanelRoute | None = None) -> None:
    """Certificates (each app's, the panel's, a self-signed default), the crt-list naming them, the HTTPS
    redirect and HSTS maps, and the ACME challenge map (kept: its entries live only there and
    in the running HAProxy, for the minutes an order takes)."""
    location.certs.mkdir(mode=0o700, exist_ok=True)
    location.served_certs.mkdir(mode=0o700, exist_ok=True)
    if not tls.is_default_bundle(_read(location.default_certificate)):  # missing, or an app's (older versions)
        copied = _read(default_certificate) if default_certificate else ""
        pem = copied if tls.is_default_bundle(copied) else tls.self_signed_bundle()
        _atomic_write(location.default_certificate, pem)
    served = {location.certificate(name): held.pem for name, held in served_certificates(routes, panel).items()}
    assert location.default_certificate not in served, "an app's certificate file is the default certificate's"
    for path, pem in served.items():
        _write_if_changed(path, pem)
    # Files of older versions (certs/<app>.pem) too: the default certificate is the only one kept there.
    for stale in ({*location.certs.glob("*.pem"), *location.served_certs.glob("*.pem")}
                  - set(served) - {location.default_certificate}):
        stale.unlink(missing_ok=True)
    _write_if_changed(location.crt_list, render_crt_list(routes, location, panel))
    _write_if_changed(location.redirect_map, map_text(redirect_entries(routes, panel)))
    _write_if_changed(location.hsts_map, map_text(hsts_entries(routes)))
    if not location.challenges_map.exists():
        _atomic_write(location.challenges_map, map_text([]))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _write_if_changed(path: Path, text: str, current: str | None = None) -> None:
    """Unchanged files are not rewritten: a switch changes the map only, and each fsync
    is time between "healthy" and "serving"."""
    if (current if current is not None else _read(path)) != text or not path.exists():
        _atomic_write(path, text)


def _push_tls(location: Paths, routes: list[AppRoute], panel: PanelRoute | None) -> bool:
    """Every certificate (the apps', the panel's) into the running HAProxy (replaced only where it
    differs from what it loaded), each crt-list line with its SNI filters, then the redirect and
    HSTS maps: no host redirects before its certificate is served. False, with nothing changed,
    if a certificate is too long for one runtime command: the caller reloads instead."""
    socket = location.admin_socket
    served = {location.certificate(name): held for name, held in served_certificates(routes, panel).items()}
    assert location.default_certificate not in served, "an app's certificate file is the default certificate's"
    changed = {path: held.pem for path, held in served.items()
               if tls.served_fingerprint(socket, path) != tls.fingerprint(held.pem)}
    default_pem = _read(location.default_certificate)
    if tls.served_fingerprint(socket, location.default_certificate) != tls.fingerprint(default_pem):
        changed[location.default_certificate] = default_pem  # replaced on disk (an app's, in older versions)
    entries = tls.crt_list_entries(socket, location.crt_list)
    lines = {path: crt_list_line(path, held) for path, held in served.items()
             if not tls.same_crt_list_line(entries.get(str(path)), crt_list_line(path, held))}
    if not (all(tls.fits_runtime(path, pem) for path, pem in changed.items())
            and all(tls.crt_list_line_fits_runtime(location.crt_list, line) for line in lines.values())):
        return False
    for path, pem in changed.items():
        tls.store(socket, path, pem)
    for path, line in lines.items():
        tls.put_crt_list_entry(socket, location.crt_list, path, line, str(path) in entries)
    for stale in tls.loaded(socket) - {str(path) for path in served} - {str(location.default_certificate)}:
        tls.uninstall(socket, location.crt_list, Path(stale))
    _push_map(location, redirect_entries(routes, panel), location.redirect_map)
    _push_map(location, hsts_entries(routes), location.hsts_map)
    return True


def _push_map(location: Paths, entries: list[tuple[str, str]], map_path: Path | None = None) -> None:
    """Replace the whole map in one version commit: every host switches at the same instant."""
    map_file = str(map_path or location.hosts_map)
    answer = runtime_api.run(location.admin_socket, f"prepare map {map_file}")
    version = answer.strip().rsplit(":", 1)[-1].strip()
    for line in _joined_in_batches([f"add map @{version} {map_file} {host} {backend}" for host, backend in entries]):
        runtime_api.run(location.admin_socket, line)
    runtime_api.run(location.admin_socket, f"commit map @{version} {map_file}")


def _all_server_commands(routes: list[AppRoute]) -> list[str]:
    commands = []
    for route in routes:
        for colour in COLOURS:
            backend = route.backends[colour]
            if route.canary:
                commands += _canary_commands(route.backend(colour), backend)
            for servers, name in ((backend.servers, slot_name), (backend.backups, backup_slot_name)):
                commands += _slot_commands(route.backend(colour), servers, name)
    return commands


def _slot_commands(backend: str, servers: tuple[Server, ...], name) -> list[str]:
    commands = []
    for index in range(MAX_REPLICAS):
        server = f"{backend}/{name(index)}"
        if index < len(servers):
            commands += [f"set server {server} addr {servers[index].addr} port {servers[index].port}",
                         f"set server {server} state ready"]
        else:
            commands.append(f"set server {server} state maint")
    return commands


def _joined_in_batches(commands: list[str]) -> list[str]:
    """Commands joined with "; " into lines of at most MAP_BATCH_BYTES (one longer command alone):
    by bytes, not by count, as hosts are up to 253 characters."""
    lines, batch, size = [], [], 0
    for command in commands:
        if batch and size + len(command) + 2 > MAP_BATCH_BYTES:
            lines.append("; ".join(batch))
            batch, size = [], 0
        batch.append(command)
        size += len(command.encode()) + 2
    return lines + (["; ".join(batch)] if batch else [])


def _atomic_write(path: Path, text: str, check=None) -> None:
    """Write a temporary file beside `path`, pass it to `check` if given (which raises to
    refuse it), then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        with open(temporary, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

"""Render HAProxy's config, maps and crt-list from a routing table (traffic/table.py).

Pure functions of plain data (no ORM, no I/O), so what HAProxy is told can be read and tested
on its own. traffic/rows.py derives the table from the database; files.py writes what this renders.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

from deployments.traffic.table import (
    COLOURS, MAX_REPLICAS, AppRoute, CheckTiming, HealthCheck, PanelRoute, Server, Tls, backend_name,
)
from deployments.validators import APP_NAME, HOSTNAME

log = logging.getLogger(__name__)

NO_APP_BACKEND = "no_app"
PLACEHOLDER_ADDR = ("127.0.0.1", 1)  # address of an unused slot; it stays in maintenance


PANEL_BACKEND = "panel"
PANEL_CERTIFICATE = "_panel"  # its certificate's file name: no app name starts with "_"


class UnsafeValue(ValueError):
    """A value that cannot be written into HAProxy's config or map as exactly one word."""


def quoted(value: str, log_format: bool = False) -> str:
    """`value` as one strongly quoted word of the config: inside '...' HAProxy expands no
    "${VAR}" and reads no escape, comment or separator ("2.2 Quoting and escaping").
    A ' or anything outside printable ASCII has no representation there: refused, never
    escaped. log_format: the argument is read as a log-format string too, where % is a tag."""
    if not isinstance(value, str) or not value or "'" in value or not all(" " <= c <= "~" for c in value) or (log_format and "%" in value):
        raise UnsafeValue(f"{value!r} cannot be written into HAProxy's config as one quoted word")
    return f"'{value}'"


@dataclass(frozen=True)
class Paths:
    directory: Path
    stats: Path | None = None  # where the read-only stats page listens; in `directory` unless set

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def hosts_map(self) -> Path:
        return self.directory / "hosts.map"

    @property
    def admin_socket(self) -> Path:
        return self.directory / "admin.sock"

    @property
    def stats_socket(self) -> Path:
        """HTTP, read-only (the stats page's CSV): what the panel reads, without HAProxy's files."""
        return self.stats or self.directory / "stats.sock"

    @property
    def master_socket(self) -> Path:
        return self.directory / "master.sock"

    @property
    def pidfile(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def certs(self) -> Path:
        return self.directory / "certs"

    @property
    def served_certs(self) -> Path:
        """The apps' and the panel's certificates: a directory of their own, so that no app's name
        (an app called "default") can be the default certificate's file."""
        return self.certs / "apps"

    def certificate(self, app_name: str) -> Path:
        """The app's certificate and key in one PEM file, as HAProxy loads it."""
        return self.served_certs / f"{app_name}.pem"

    @property
    def default_certificate(self) -> Path:
        """Served when no app's certificate matches (HAProxy needs one to listen for TLS)."""
        return self.certs / "default.pem"

    @property
    def crt_list(self) -> Path:
        return self.directory / "certs.list"

    @property
    def challenges_map(self) -> Path:
        """ACME HTTP-01 token -> key authorization, answered by HAProxy itself."""
        return self.directory / "challenges.map"

    @property
    def redirect_map(self) -> Path:
        """Hosts whose plain HTTP requests redirect to HTTPS."""
        return self.directory / "https-redirect.map"

    @property
    def hsts_map(self) -> Path:
        return self.directory / "hsts.map"


def slot_name(index: int) -> str:
    return f"s{index + 1}"


def backup_slot_name(index: int) -> str:
    return f"b{index + 1}"


def canary_slot_name(index: int) -> str:
    return f"c{index + 1}"


CANARY_COOKIE = "switchyard_release"  # which server a client stays on during a canary
LATENCY_RING = "latency"  # HAProxy's in-memory log of canary apps' requests (haproxy/latency.py reads it)
LATENCY_FORMAT = "%b %s %ST %Tr"  # backend, server, status, server response time (ms)


MAP_HEADER = "# host -> backend of the app's live colour; written by Switchyard"


def render_map(routes: list[AppRoute]) -> str:
    return map_text(map_entries(routes))


def served_certificates(routes: list[AppRoute], panel: PanelRoute | None = None) -> dict[str, Tls]:
    """Certificate file name (an app's name, or the panel's) -> what is served from it: only
    certificates that cover a host of their holder (a crt-list line without SNI filters would
    serve one for every name it holds), and never an app's for the panel's host."""
    served = {}
    for route in _routable(routes):
        covered = tuple(host for host in route.tls.covered if not panel or host != panel.hostname) if route.tls else ()
        if covered:
            served[route.name] = Tls(covered, route.tls.redirect, route.tls.hsts, route.tls.pem)
    if panel and panel.tls:
        served[PANEL_CERTIFICATE] = panel.tls
    return served


def crt_list_line(path: Path, held: Tls) -> str:
    """The certificate file and, as SNI filters, the exact hosts it is served for: HAProxy then
    ignores the names the certificate itself holds (another tenant's, the panel's, a wildcard).
    A client asking for any other name, or none, gets the bind's default certificate."""
    return " ".join([str(path), *held.covered])


def render_crt_list(routes: list[AppRoute], paths: Paths, panel: PanelRoute | None = None) -> str:
    """One line per certificate, with its SNI filters."""
    return "".join(f"{crt_list_line(paths.certificate(name), held)}\n"
                   for name, held in served_certificates(routes, panel).items())


def redirect_entries(routes: list[AppRoute], panel: PanelRoute | None = None) -> list[tuple[str, str]]:
    """Hosts whose plain HTTP answers 301 to HTTPS: an app's once its certificate covers them (if
    the app wants it), the panel's always (its login form must never be sent in clear)."""
    entries = [(host, "1") for route in _routable(routes) if route.tls and route.tls.redirect
               for host in route.tls.covered]
    return entries + ([(panel.hostname, "1")] if panel else [])


def hsts_entries(routes: list[AppRoute]) -> list[tuple[str, str]]:
    """The panel's own header comes from Django (SECURE_HSTS_SECONDS), whoever terminates its TLS."""
    return [(host, "1") for route in _routable(routes) if route.tls and route.tls.hsts for host in route.tls.covered]


def map_entries(routes: list[AppRoute]) -> list[tuple[str, str]]:
    return [(host, route.backend(route.live_colour)) for route in _routable(routes) for host in route.hostnames]


def _routable(routes: list[AppRoute]) -> list[AppRoute]:
    """Routes whose name and hosts can be written as words of the config, the map and the
    runtime API. Validation lets nothing else into the database; a row written around it must
    cost its own app's routing, not every app's (a config HAProxy refuses stops them all)."""
    safe = []
    for route in routes:
        if not APP_NAME.fullmatch(route.name):
            log.error("app %r is not routed: its name cannot be written into HAProxy's config", route.name)
            continue
        hosts = tuple(host for host in route.hostnames if HOSTNAME.fullmatch(host))
        if hosts != route.hostnames:
            log.error("app %s: hosts %r are not routed: they are not hostnames", route.name,
                      sorted(set(route.hostnames) - set(hosts)))
        tls = route.tls and Tls(tuple(h for h in route.tls.covered if h in hosts), route.tls.redirect, route.tls.hsts,
                                route.tls.pem)
        safe.append(AppRoute(route.name, hosts, route.live_colour, route.backends, tls, route.canary))
    return safe


def check_route(route: AppRoute) -> None:
    """Raise UnsafeValue if rendering would leave out any part of the route (see _routable
    and _health_lines): for checking a value before it is stored."""
    if not APP_NAME.fullmatch(route.name):
        raise UnsafeValue(f"{route.name!r} cannot be written into HAProxy's config as an app name")
    for host in route.hostnames:
        if not HOSTNAME.fullmatch(host):
            raise UnsafeValue(f"{host!r} cannot be written into HAProxy's map as a hostname")
    for backend in route.backends.values():
        _health_words(backend.health)


def map_text(entries: list[tuple[str, str]]) -> str:
    return "\n".join([MAP_HEADER, *(f"{host} {backend}" for host, backend in entries)]) + "\n"


def parse_map(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def route_app_to(entries: list[tuple[str, str]], app_name: str, colour: str) -> list[tuple[str, str]] | None:
    """The same map with every host of the app pointed at its `colour` backend;
    None if the map has no host of the app."""
    own = {backend_name(app_name, c) for c in COLOURS}
    if not any(backend in own for _, backend in entries):
        return None
    target = backend_name(app_name, colour)
    return [(host, target if backend in own else backend) for host, backend in entries]


@dataclass(frozen=True)
class Binds:
    http: tuple[str, int]
    https: tuple[str, int]
    metrics: tuple[str, int] | None = None  # HAProxy's own Prometheus exporter over TCP
    exporter: bool = False  # this HAProxy was built with it (Debian's is)


HSTS_MAX_AGE = 31536000  # a year, as browsers' preload lists ask


def render_config(routes: list[AppRoute], paths: Paths, binds: Binds, panel: PanelRoute | None = None, *,
                  checks: CheckTiming = CheckTiming()) -> str:
    parts = [_global_and_defaults(paths, checks), _latency_ring(), _stats_frontend(paths, binds),
             _frontend(paths, binds, panel), _no_app_backend()]
    if panel:
        parts.append(_panel_backend(panel))
    for route in _routable(routes):
        parts += [_app_backend(route, colour) for colour in COLOURS]
    return "\n".join(parts)


def _global_and_defaults(paths: Paths, checks: CheckTiming) -> str:
    # retry-on + redispatch: a request that meets a dying container is retried on another
    # server; disable-l7-retry (frontend) keeps that to requests that are safe to replay.
    # idle-close-on-response: on a reload, the old worker keeps its idle keep-alive client
    # connections and closes each after answering its next request ("Connection: close").
    # Closing them idle (the default) races with a request the client is sending at that
    # moment, which then fails without an answer: a reload for one app cost another app's
    # clients requests (issue 13's probe). timeout tunnel: WebSockets may stay idle for long.
    return f"""# Generated by Switchyard from its database. Runtime changes are written back here.
global
    stats socket {paths.admin_socket} mode 600 level admin expose-fd listeners
    stats timeout 30s
    maxconn 4000
    hard-stop-after 120s

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 120s
    timeout http-request 15s
    timeout http-keep-alive 15s
    timeout queue 15s
    timeout tunnel 1h
    option idle-close-on-response
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503
    default-server inter {checks.interval()} downinter {checks.down_interval()} fall 2 rise 1 observe layer7 error-limit 10 on-error fail-check
"""


def _latency_ring() -> str:
    """Each request of an app with canary deploys, one short line, kept in memory (nothing on
    disk, the oldest overwritten): HAProxy's stats have only averages, a canary compares p95."""
    return f"""ring {LATENCY_RING}
    format raw
    maxlen 200
    size 4194304
"""


def _stats_frontend(paths: Paths, binds: Binds) -> str:
    """The stats page without `stats admin`: it can only be read. A stats *socket* would not
    do, even at `level user`: HAProxy 2.6 accepts `set map` there, which moves traffic.
    /metrics there is HAProxy's own Prometheus exporter, when built in; on TCP (if asked) only
    the exporter answers, in a frontend of its own: the stats page names every server."""
    if not binds.exporter:
        exporter = metrics = ""
    else:
        exporter = "    http-request use-service prometheus-exporter if { path /metrics }\n"
        metrics = (f"\nfrontend metrics\n    bind {binds.metrics[0]}:{binds.metrics[1]}\n"
                   "    http-request use-service prometheus-exporter if { path /metrics }\n"
                   "    http-request return status 404 content-type text/plain string \"only /metrics here\\n\"\n"
                   if binds.metrics else "")
    return f"""frontend stats
    bind unix@{paths.stats_socket} mode 660
{exporter}    stats enable
    stats uri /
{metrics}"""


def _frontend(paths: Paths, binds: Binds, panel: PanelRoute | None) -> str:
    """ACME's HTTP-01 challenges are answered here, before any app sees the request, from a map
    the worker fills at runtime. The redirect goes to the HTTPS port (left out when it is 443).
    The panel's domain is a setting, not a row: a line of its own, ahead of the apps' map."""
    https_port = "" if binds.https[1] == 443 else f":{binds.https[1]}"
    panel_line = f"    use_backend {PANEL_BACKEND} if {{ var(txn.host) -m str {quoted(panel.hostname)} }}\n" if panel else ""
    return f"""frontend apps
    bind {binds.http[0]}:{binds.http[1]}
    bind {binds.https[0]}:{binds.https[1]} ssl crt {paths.default_certificate} crt-list {paths.crt_list} alpn http/1.1
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.acme) path,field(4,/),map({paths.challenges_map}) if {{ path_beg /.well-known/acme-challenge/ }}
    http-request return status 200 content-type text/plain lf-string "%[var(txn.acme)]" if {{ var(txn.acme) -m found }}
    http-request redirect location https://%[var(txn.host)]{https_port}%[capture.req.uri] code 301 if !{{ ssl_fc }} {{ var(txn.host),map({paths.redirect_map}) -m found }}
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    http-request disable-l7-retry unless METH_GET or METH_OPTIONS
    log ring@{LATENCY_RING} format raw local0
    log-format "{LATENCY_FORMAT}"
    http-request set-log-level silent
    http-response set-header Strict-Transport-Security "max-age={HSTS_MAX_AGE}" if {{ ssl_fc }} {{ var(txn.host),map({paths.hsts_map}) -m found }}
{panel_line}    use_backend %[var(txn.host),map({paths.hosts_map},{NO_APP_BACKEND})]
    default_backend {NO_APP_BACKEND}
"""


def _no_app_backend() -> str:
    return f"""backend {NO_APP_BACKEND}
    http-request return status 404 content-type text/plain string "No app is served at this host.\\n"
"""


def _panel_backend(panel: PanelRoute) -> str:
    """The panel's live page holds a WebSocket open for as long as it is shown (the defaults'
    `timeout tunnel`). The client's address replaces any X-Forwarded-For it sent: login
    throttling counts failures per address."""
    return f"""backend {PANEL_BACKEND}
    http-request set-header X-Forwarded-For %[src]
    server panel {panel.server.addr}:{panel.server.port}
"""


def _app_backend(route: AppRoute, colour: str) -> str:
    """A canary app's backends also have c slots (the new release beside the live one, by weight),
    a cookie that keeps each client on the server it first got, and their requests logged to
    the latency ring (the frontend silences every other request)."""
    backend = route.backends[colour]
    health = backend.health
    lines = [f"backend {route.backend(colour)}", "    balance roundrobin", *_health_lines(route.name, health),
             f"    timeout check {int(health.timeout * 1000)}ms"]
    if not route.canary:
        lines += _slots(backend.servers, slot_name, "check")
        lines += _slots(backend.backups, backup_slot_name, "check backup")
        return "\n".join(lines) + "\n"
    old_weight, new_weight = backend.weights()
    lines += [f"    cookie {CANARY_COOKIE} insert indirect nocache httponly", "    http-request set-log-level info"]
    lines += _slots(backend.servers, slot_name, "check", cookie=True, weight=old_weight)
    lines += _slots(backend.backups, backup_slot_name, "check backup")
    lines += _slots(backend.canaries, canary_slot_name, "check", cookie=True, weight=new_weight)
    return "\n".join(lines) + "\n"


def _health_lines(app_name: str, health: HealthCheck) -> list[str]:
    """The HTTP check with path and Host header quoted; without it (servers checked by TCP
    connect) if a stored value cannot be quoted: validation keeps such values out and a
    migration repaired old ones, so this is a row written around both, and it must not stop
    HAProxy from starting for every other app."""
    try:
        path, host, status = _health_words(health)
    except UnsafeValue as error:
        log.error("app %s: HTTP health check left out of HAProxy's config (TCP check only): %s", app_name, error)
        return ["    # HTTP health check left out: the stored path, Host header or status cannot be written safely"]
    return ["    option httpchk", f"    http-check send meth GET uri {path} ver HTTP/1.1 hdr Host {host}",
            f"    http-check expect status {status}"]


def _health_words(health: HealthCheck) -> tuple[str, str, int]:
    if not isinstance(health.status, int) or not 100 <= health.status <= 599:
        raise UnsafeValue(f"{health.status!r} is not an HTTP status")
    return quoted(health.path), quoted(health.host, log_format=True), health.status


def _slots(servers: tuple[Server, ...], name, options: str, cookie: bool = False, weight: int | None = None) -> list[str]:
    lines = []
    for index in range(MAX_REPLICAS):
        slot = name(index)
        extra = (f" cookie {slot}" if cookie else "") + (f" weight {weight}" if weight is not None else "")
        if index < len(servers):
            lines.append(f"    server {slot} {servers[index].addr}:{servers[index].port} {options}{extra}")
        else:
            addr, port = PLACEHOLDER_ADDR
            lines.append(f"    server {slot} {addr}:{port} {options}{extra} disabled")
    return lines

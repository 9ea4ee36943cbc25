"""Apply a routing table to one HAProxy: its files first, then the running process brought to the
same state (started if down, reloaded if the config's structure changed, else runtime commands).
The adapter's whole job; which table, and when, is traffic/changes.py's.

A certificate HAProxy refuses never stops it for the other apps: if it refuses the config, each
certificate is checked on its own and the table is written again without those it refuses; the
verdicts go back to the caller, which stores them (the next table leaves those out by itself)."""
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from deployments.haproxy import commands, files, process, runtime_api, tls
from deployments.haproxy.config import (
    PANEL_CERTIFICATE,
    Binds,
    Paths,
    crt_list_line,
    hsts_entries,
    map_entries,
    map_text,
    parse_map,
    redirect_entries,
    route_app_to,
    served_certificates,
)
from deployments.traffic.table import RoutingTable, backend_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """HAProxy's word on one certificate checked on its own: `refusal` "" if it loads it."""
    key: str  # the checked certificate's Tls.verdict_key
    refusal: str


@dataclass
class Applied:
    """What applying a table learned on the way: verdicts per certificate file name (an app's
    name, or PANEL_CERTIFICATE), for the caller to store even if the apply then failed."""
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def apply_table(table: RoutingTable, location: Paths, binds: Binds, *, applied: Applied, push_maps: bool = False,
          server_commands: list[str] | tuple[str, ...] = (), start_if_down: bool = True) -> None:
    """Write the table's files, then bring HAProxy to the same state: start it if it is down (if
    start_if_down), reload it if the config's structure changed, else push the maps and
    certificates (push_maps) and send server_commands."""
    running = process.is_running(location)
    # Before a start the config is checked even if unchanged: an older version's, or one naming a
    # certificate that this HAProxy refuses.
    table, structure_changed = _write_loadable(table, location, binds, applied, check=start_if_down and not running)
    if not running:
        if start_if_down:
            process.start(location)  # a fresh process reads the complete state from the files
        return
    if structure_changed:  # checked before it replaced the old config
        process.reload(location)
        return
    if push_maps:
        push_map(location, map_entries(list(table.apps)))
        if not _pushed_tls(table, location, binds, applied):
            _write_loadable(table, location, binds, applied, check=True)  # a reload reads every certificate: checked
            process.reload(location)
            return
    for line in commands.joined_in_batches(list(server_commands)):
        runtime_api.run(location.admin_socket, line)


def run_server_commands(location: Paths, server_commands: list[str]) -> None:
    """Runtime commands alone, for a state no file holds (a deployment's armed slots): no table
    rendered, nothing written; nothing at all if HAProxy is not running (it then starts with
    every slot as the files have it)."""
    if not process.is_running(location):
        return
    for line in commands.joined_in_batches(server_commands):
        runtime_api.run(location.admin_socket, line)


def _pushed_tls(table: RoutingTable, location: Paths, binds: Binds, applied: Applied) -> bool:
    """push_tls; if HAProxy refuses a certificate there, again once the certificates it refuses
    on their own are found and left out (_write_loadable)."""
    try:
        return push_tls(location, table)
    except runtime_api.HAProxyCommandError as error:
        log.error("HAProxy refused a certificate change (%s); checking each certificate on its own", error)
        table, _ = _write_loadable(table, location, binds, applied, check=True)
        return push_tls(location, table)


def _write_loadable(table: RoutingTable, location: Paths, binds: Binds, applied: Applied,
                    check: bool) -> tuple[RoutingTable, bool]:
    """files.write_table; if HAProxy refuses the config that makes, each certificate is checked on
    its own (_verdicts) and the files are written again without those it refuses: one certificate
    (a row written around the upload's checks, one that a newer HAProxy no longer loads) must not
    keep HAProxy from starting or reloading for every app. Raises HAProxyConfigInvalid if it
    refuses the config without them too. Returns the table written and whether the structure changed."""
    try:
        return table, files.write_table(location, table, binds, check)
    except process.HAProxyConfigInvalid as error:
        verdicts = _verdicts(table)
        applied.verdicts.update(verdicts)
        refused = {name for name, verdict in verdicts.items() if verdict.refusal}
        if not refused:
            raise
        log.error("HAProxy refused its config (%s); rendering it again without the certificates it refuses", error)
        table = without_certificates(table, refused)
        return table, files.write_table(location, table, binds, check)


def _verdicts(table: RoutingTable) -> dict[str, Verdict]:
    """Every served certificate checked by HAProxy on its own, on its crt-list line (whatever
    verdict was stored: HAProxy may have changed since), each remembered by the key the table's
    derivation reads (traffic/rows.py). Refusals are logged."""
    keys = {route.name: route.tls.verdict_key for route in table.apps if route.tls}
    if table.panel and table.panel.tls:
        keys[PANEL_CERTIFICATE] = table.panel.tls.verdict_key
    refusals = process.certificate_refusals(served_certificates(list(table.apps), table.panel))
    for name, refusal in refusals.items():
        if refusal:
            log.error("certificate of %s left out of HAProxy: HAProxy refuses it on its own (%s)", name, refusal)
    return {name: Verdict(keys[name], refusal) for name, refusal in refusals.items()}


def without_certificates(table: RoutingTable, names: set[str]) -> RoutingTable:
    """The table with these certificates (by file name) not served: what it is derived as once
    their refusals are stored."""
    apps = tuple(dataclasses.replace(route, tls=None) if route.name in names else route for route in table.apps)
    panel = table.panel
    if panel and PANEL_CERTIFICATE in names:
        panel = dataclasses.replace(panel, tls=None)
    return dataclasses.replace(table, apps=apps, panel=panel)


def push_tls(location: Paths, table: RoutingTable) -> bool:
    """Every certificate (the apps', the panel's) into the running HAProxy (replaced only where it
    differs from what it loaded), each crt-list line with its SNI filters, then the redirect and
    HSTS maps: no host redirects before its certificate is served. False, with nothing changed,
    if a certificate is too long for one runtime command: the caller reloads instead."""
    socket, routes = location.admin_socket, list(table.apps)
    served = {location.certificate(name): held for name, held in served_certificates(routes, table.panel).items()}
    assert location.default_certificate not in served, "an app's certificate file is the default certificate's"
    changed = {path: held.pem for path, held in served.items()
               if tls.served_fingerprint(socket, path) != tls.fingerprint(held.pem)}
    default_pem = files.read(location.default_certificate)
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
    push_map(location, redirect_entries(routes, table.panel), location.redirect_map)
    push_map(location, hsts_entries(routes), location.hsts_map)
    return True


def push_map(location: Paths, entries: list[tuple[str, str]], map_path: Path | None = None) -> None:
    """Replace the whole map in one version commit: every host switches at the same instant."""
    map_file = str(map_path or location.hosts_map)
    answer = runtime_api.run(location.admin_socket, f"prepare map {map_file}")
    version = answer.strip().rsplit(":", 1)[-1].strip()
    lines = commands.joined_in_batches([f"add map @{version} {map_file} {host} {backend}" for host, backend in entries])
    for line in lines:
        runtime_api.run(location.admin_socket, line)
    runtime_api.run(location.admin_socket, f"commit map @{version} {map_file}")


def switch_hosts(location: Paths, app_name: str, colour: str) -> float | None:
    """Point every host of an app at its `colour` backend, HAProxy first (nothing is rendered or
    read but the map file: this runs between "healthy" and "serving"), then the map file. Returns
    when HAProxy had it (time.monotonic()); None, with nothing changed, if the map file has no host
    of the app yet, or HAProxy is down or refused: the caller then applies the whole table. The map
    file is the last table applied, rendered."""
    entries = route_app_to(parse_map(files.read(location.hosts_map)), app_name, colour)
    if entries is None or not _pushed_route(location, entries, backend_name(app_name, colour)):
        return None
    routed_at = time.monotonic()
    files.atomic_write(location.hosts_map, map_text(entries))
    return routed_at


def _pushed_route(location: Paths, entries: list[tuple[str, str]], backend: str) -> bool:
    """One host: `set map`, atomic by itself and one round trip. Several: a versioned commit of
    the whole map, so they all switch at the same instant. False if HAProxy is down or refused."""
    hosts = [host for host, target in entries if target == backend]
    try:
        if len(hosts) == 1:
            runtime_api.run(location.admin_socket, f"set map {location.hosts_map} {hosts[0]} {backend}")
        else:
            push_map(location, entries)
    except (runtime_api.HAProxyUnavailable, runtime_api.HAProxyCommandError):
        return False
    return True


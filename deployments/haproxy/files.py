"""HAProxy's files from a routing table: config, host map, crt-list, certificates, the redirect,
HSTS and ACME challenge maps. Every file is replaced by atomic rename (a reload or restart at any
moment reads a whole file), and only when its text changed (each fsync is time between "healthy"
and "serving")."""
import hashlib
import os
import re
import time
from collections import OrderedDict
from pathlib import Path

from deployments.haproxy import process, tls
from deployments.haproxy.config import (
    Binds,
    Paths,
    hsts_entries,
    map_text,
    redirect_entries,
    render_config,
    render_crt_list,
    render_map,
    served_certificates,
)
from deployments.traffic.table import AppRoute, PanelRoute, RoutingTable

# What a runtime command changes in a server line: address, weight, disabled. The rest (check,
# backup, cookie) follows from lines and slot names that a reload is needed for.
SERVER_LINE = re.compile(r"^(    server \S+) .*$", re.MULTILINE)

# Configs HAProxy accepted in this process, each with the files it reads as they were then
# (_check_key), most recent last: one checked ahead, outside the router lock (check_ahead), is
# not checked again under it unless something it reads changed meanwhile.
_accepted: OrderedDict[str, None] = OrderedDict()
ACCEPTED_KEPT = 16


def write_table(location: Paths, table: RoutingTable, binds: Binds, check: bool = False) -> bool:
    """Write config, maps and certificates; return whether the config changed beyond server
    addresses/state. A changed config is checked (`haproxy -c`) in a temporary file beside
    haproxy.cfg and only then renamed over it, before the host map: if HAProxy refuses it,
    neither file is replaced. What the config names is written first (HAProxy's check opens it).
    check: an unchanged config is checked too (the certificates it names may have changed)."""
    location.directory.mkdir(parents=True, exist_ok=True)
    routes = list(table.apps)
    config = render_config(routes, location, binds, table.panel, checks=table.checks)
    hosts_map = render_map(routes)
    previous = read(location.config)
    write_referenced_files(location, routes, panel=table.panel)
    structure_changed = SERVER_LINE.sub(r"\1", previous) != SERVER_LINE.sub(r"\1", config)
    if config != previous:
        if not location.hosts_map.exists():
            atomic_write(location.hosts_map, hosts_map)
        # Server lines carry only what the adapter puts there (address, weight, disabled), and a
        # check takes ~0.3 s: too long between "worse" and "all traffic back" in a canary.
        atomic_write(location.config, config, check=_checker(location, config) if structure_changed or check else None)
    elif check:
        process.check_config(location.config)
    write_if_changed(location.hosts_map, hosts_map)
    return structure_changed


def check_ahead(location: Paths, table: RoutingTable, binds: Binds) -> None:
    """`haproxy -c` of the config this table makes, against the files on disk now, remembered if
    HAProxy accepts it; for the caller to run before it takes the router lock. Applying the
    table under the lock (write_table) then skips the check, unless the config's structure or a
    file it reads changed meanwhile (another change came first). At 40 apps a check takes 0.1 to
    0.3 s, every change of HAProxy waits for the lock, and creating an app held it that long.
    A refusal is left for write_table to find again and handle."""
    if not location.config.exists():
        return
    config = render_config(list(table.apps), location, binds, table.panel, checks=table.checks)
    key = _check_key(location, config)
    if key in _accepted:
        return
    temporary = _beside(location.config)
    try:
        temporary.write_text(config)
        process.check_config(temporary)
    except process.HAProxyConfigInvalid:
        return
    finally:
        temporary.unlink(missing_ok=True)
    _remember_accepted(key)


def _checker(location: Paths, config: str):
    """The check for atomic_write: none if this config, with the files it reads as they are now,
    was accepted already (check_ahead); else `haproxy -c`, remembered if it passes."""
    key = _check_key(location, config)
    if key in _accepted:
        return None

    def check(path: Path) -> None:
        process.check_config(path)
        _remember_accepted(key)
    return check


def _check_key(location: Paths, config: str) -> str:
    """What `haproxy -c` reads: the config's structure (server lines carry only addresses and
    states, which HAProxy takes at runtime too) and every file it names, by content; the hosts
    map by name only: every switch rewrites it (one host's backend), and HAProxy reads it the
    same whichever backend each host names."""
    digest = hashlib.sha256(SERVER_LINE.sub(r"\1", config).encode())
    digest.update(f"\0{location.hosts_map}\0{location.hosts_map.exists()}".encode())
    named = [location.default_certificate, location.crt_list, location.challenges_map, location.redirect_map,
             location.hsts_map, *sorted(location.served_certs.glob("*.pem"))]
    for path in named:
        digest.update(f"\0{path}\0".encode() + read(path).encode())
    return digest.hexdigest()


def _remember_accepted(key: str) -> None:
    _accepted[key] = None
    _accepted.move_to_end(key)
    while len(_accepted) > ACCEPTED_KEPT:
        _accepted.popitem(last=False)


def write_referenced_files(location: Paths, routes: list[AppRoute], default_certificate: Path | None = None,
                           panel: PanelRoute | None = None) -> None:
    """Certificates (each app's, the panel's, a self-signed default), the crt-list naming them, the HTTPS
    redirect and HSTS maps, and the ACME challenge map (kept: its entries live only there and
    in the running HAProxy, for the minutes an order takes)."""
    location.certs.mkdir(mode=0o700, exist_ok=True)
    location.served_certs.mkdir(mode=0o700, exist_ok=True)
    if not tls.is_default_bundle(read(location.default_certificate)):  # missing, or an app's (older versions)
        copied = read(default_certificate) if default_certificate else ""
        pem = copied if tls.is_default_bundle(copied) else tls.self_signed_bundle()
        atomic_write(location.default_certificate, pem)
    served = {location.certificate(name): held.pem for name, held in served_certificates(routes, panel).items()}
    assert location.default_certificate not in served, "an app's certificate file is the default certificate's"
    for path, pem in served.items():
        write_if_changed(path, pem)
    # Files of older versions (certs/<app>.pem) too: the default certificate is the only one kept there.
    for stale in ({*location.certs.glob("*.pem"), *location.served_certs.glob("*.pem")}
                  - set(served) - {location.default_certificate}):
        stale.unlink(missing_ok=True)
    write_if_changed(location.crt_list, render_crt_list(routes, location, panel))
    write_if_changed(location.redirect_map, map_text(redirect_entries(routes, panel)))
    write_if_changed(location.hsts_map, map_text(hsts_entries(routes)))
    if not location.challenges_map.exists():
        atomic_write(location.challenges_map, map_text([]))


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def write_if_changed(path: Path, text: str) -> None:
    if read(path) != text or not path.exists():
        atomic_write(path, text)


def atomic_write(path: Path, text: str, check=None) -> None:
    """Write a temporary file beside `path`, pass it to `check` if given (which raises to
    refuse it), then rename it over `path`."""
    temporary = _beside(path)
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


def _beside(path: Path) -> Path:
    """A temporary file's name in path's directory: hidden (a leading dot), and this process's
    own at this moment (atomic_write's file before its rename, check_ahead's checked copy)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")

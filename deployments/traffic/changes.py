"""Every routing change, in one order, under one Redis lock:
  1. the state written (the deployment's routing fields, the app's live release, a certificate),
  2. the routing table derived from the database (rows.py),
  3. the table applied to HAProxy (haproxy/apply.py): files by atomic rename, then the running
     process (runtime commands, or a reload when the config's structure changed, e.g. a new app).
So a reload or restart at any moment lands on the routing the runtime already had. The pipeline,
canary, reconcile, the certificates and the panel ask for a change here and nothing calls back;
this is the only module that changes HAProxy through the adapter.

The switch is the one exception to that order (switch_to): it is on the path between "healthy"
and "serving", so it tells HAProxy first and writes the map file and the rows right after, still
under the lock, so nobody else ever sees the three differ.
"""
import logging
import time
from contextlib import contextmanager
from typing import Iterator

from deployments.engine import lifecycle
from deployments.engine.locks import router_lock
from deployments.haproxy import apply, challenges, commands, files, sessions
from deployments.haproxy.config import PANEL_CERTIFICATE, slot_name
from deployments.models import Certificate, Deployment
from deployments.traffic import rows, target
from deployments.traffic.table import MAX_REPLICAS, RoutingTable, other_colour

log = logging.getLogger(__name__)


def publish_servers(deployment: Deployment, *, with_backups: bool = False) -> None:
    """The deployment's containers into its colour's backend (they start health checks); with
    `with_backups`, the previous release's containers as `backup` servers of that backend too, in
    the same change."""
    with router_lock():
        flags = {"holds_backend": True, "serves_backup": True} if with_backups else {"holds_backend": True}
        lifecycle.record_routing(deployment, **flags)
        backend = deployment.app.backend_name(deployment.colour)
        server_commands = commands.ready(backend, rows.servers(deployment.containers))
        if with_backups:
            server_commands += commands.ready(backend, rows.servers(deployment.previous.containers), "backups")
        _apply(server_commands=server_commands)


def arm_servers(app_backend: str, count: int) -> None:
    """The slots a deployment's containers will take, checked by HAProxy from now on at an
    address that refuses (haproxy/commands.armed). Nothing is written: the table still has them
    in maintenance, so a reload, a restart or reconcile puts them back there.

    Without the router lock: these slots are the deployment's own (no other deployment of the app
    runs, and no request reaches the colour that does not serve), and whatever else changes them
    meanwhile (a reload, reconcile) puts them in maintenance, which costs the verify its head
    start and nothing else. Deployments of many apps at once waited here for each other's
    changes (sampled: a third of their waits for the lock)."""
    apply.run_server_commands(target.paths(), commands.armed(app_backend, count))


def disarm_servers(app_backend: str, count: int) -> None:
    """Armed slots back in maintenance (a deployment that ends before its servers are published)."""
    with router_lock():
        apply.run_server_commands(target.paths(), commands.maintenance(app_backend, count))


def withdraw_servers(deployment: Deployment) -> None:
    """No new requests to the deployment's servers; those in flight carry on (see
    readings.open_streams)."""
    with router_lock():
        lifecycle.record_routing(deployment, holds_backend=False)
        backend = deployment.app.backend_name(deployment.colour)
        _apply(server_commands=commands.maintenance(backend, len(deployment.containers)))


def withdraw_backups(deployment: Deployment) -> None:
    with router_lock():
        lifecycle.record_routing(deployment, serves_backup=False)
        backend = deployment.app.backend_name(deployment.colour)
        _apply(server_commands=commands.maintenance(backend, MAX_REPLICAS, "backups"))


def set_canary_share(deployment: Deployment, percent: int) -> None:
    """The deployment's containers into the live backend's c slots, with weights that give them
    `percent` of its requests (0: out again, the old release takes them all). Clients keep the
    server they got (a cookie); only new clients follow a changed weight. Raises
    lifecycle.NotRunning (nothing changed) for a share above 0 of a deployment that ended."""
    with router_lock():
        lifecycle.record_canary(deployment, percent=percent)
        live = other_colour(deployment.colour)
        table = rows.table()
        route = table.app(deployment.app.name)
        _apply(table, server_commands=commands.canary(route.backend(live), route.backends[live]))


def switch_to(deployment: Deployment) -> float:
    """Point every host of the app at the deployment's colour (one atomic map commit) and store
    it as the app's live release. Returns when HAProxy had the new routing (time.monotonic()).

    The runtime goes first and nothing is queried or rendered before it: under this lock the
    map file is the last table applied, so the new map is that file with the app's hosts pointed
    at the new colour. The file and the database follow under the same lock, before the switch
    counts as done; if anything fails, HAProxy gets the database's map back."""
    with router_lock():
        undo = None
        try:
            routed_at = apply.switch_hosts(target.paths(), deployment.app.name, deployment.colour)
            undo = lifecycle.go_live(deployment)
            if routed_at is None:  # no map file yet, or HAProxy down or refusing: the whole table
                _apply(push_maps=True)  # (it starts HAProxy if needed)
                routed_at = time.monotonic()
        except Exception:
            if undo:
                undo()
            _apply_quietly(push_maps=True)
            raise
    return routed_at


@contextmanager
def certificates_changing() -> Iterator[None]:
    """Around storing or removing a certificate (issued, renewed, uploaded): then its file, the
    crt-list and the redirect and HSTS maps, and the same in the running HAProxy through the
    runtime API, without a reload. Does not start HAProxy."""
    with router_lock():
        yield
        _apply(push_maps=True, start_if_down=False)


def apply_certificates() -> None:
    """The certificates as the database has them (an upload stored by the web process)."""
    with certificates_changing():
        pass


def apps_changed() -> None:
    """After apps or domains were added, changed or deleted: new files, and a reload if HAProxy
    runs. Does not start HAProxy: creating an app from the CLI must not leave a proxy behind.
    The new config is checked by HAProxy before the lock, where the check does not hold up
    every other change (haproxy/files.py check_ahead)."""
    files.check_ahead(target.paths(), rows.table(), target.binds())
    with router_lock():
        _apply(push_maps=True, start_if_down=False)


def sync_all(*, start: bool | None = None, hold: tuple[Deployment, ...] = (),
             release: tuple[Deployment, ...] = ()) -> None:
    """Make HAProxy equal the database: start it if it is down (unless target.may_start says
    not, or `start` is False), reload if its config's structure changed, and push every map
    entry and server slot. Reconcile's repairs first: `hold` (live releases whose containers
    came back) hold their backend again, `release` (no owner any more) hold nothing."""
    with router_lock():
        for deployment in hold:
            lifecycle.record_routing(deployment, holds_backend=True)
        for deployment in release:
            lifecycle.record_routing(deployment, holds_backend=False, serves_backup=False)
        table = rows.table()
        _apply(table, push_maps=True, server_commands=commands.every_server(table), start_if_down=start)


def close_sessions(deployment: Deployment) -> None:
    """Cut what is still open on a withdrawn deployment's servers, in every HAProxy process
    (the drain timeout passed, or its containers stopped)."""
    backend = deployment.app.backend_name(deployment.colour)
    location = target.paths()
    sessions.shut_down(location.admin_socket, location.master_socket,
                       [f"{backend}/{slot_name(i)}" for i in range(len(deployment.containers))])


def publish_challenge(token: str, key_authorization: str) -> None:
    """HAProxy answers GET /.well-known/acme-challenge/TOKEN with the key authorization."""
    with router_lock():
        challenges.publish(target.paths(), token, key_authorization)


def withdraw_challenge(token: str) -> None:
    with router_lock():
        challenges.withdraw(target.paths(), token)


def _apply(table: RoutingTable | None = None, *, push_maps: bool = False, server_commands: list[str] = (),
           start_if_down: bool | None = None) -> None:
    """The table (derived now unless given) applied to this host's HAProxy; the certificate
    verdicts learned on the way stored, even if it then failed (the next table leaves out what
    HAProxy refuses)."""
    applied = apply.Applied()
    try:
        apply.apply_table(table or rows.table(), target.paths(), target.binds(), applied=applied, push_maps=push_maps,
                      server_commands=server_commands,
                      start_if_down=target.may_start() if start_if_down is None else start_if_down)
    finally:
        for name, verdict in applied.verdicts.items():
            held = Certificate.objects.filter(app=None) if name == PANEL_CERTIFICATE else \
                Certificate.objects.filter(app__name=name)
            held.update(haproxy_checked=verdict.key, haproxy_refusal=verdict.refusal)


def _apply_quietly(**kwargs) -> None:
    try:
        _apply(**kwargs)
    except Exception:  # the caller is already failing with the first error; this is clean-up
        pass

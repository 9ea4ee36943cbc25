"""The routing table derived from the database: which deployment holds which colour of each app
(holds_backend), which serves the previous release as backups (serves_backup), a canary's share
(canary_percent), each app's live colour, domains and certificate, and the panel's route."""
import logging

from django.conf import settings

from deployments.dockerd.values import Container
from deployments.haproxy import tls
from deployments.models import App, Certificate, Deployment
from deployments.traffic.table import (
    AppRoute, CheckTiming, HealthCheck, Holder, PanelRoute, RoutingTable, Server, Tls, app_route,
)

log = logging.getLogger(__name__)

LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # a bind on every address answers there


def table() -> RoutingTable:
    return RoutingTable(apps=tuple(app_routes()), panel=panel_route(), checks=check_timing())


def check_timing() -> CheckTiming:
    return CheckTiming(interval_ms=settings.SWITCHYARD["HAPROXY_CHECK_INTERVAL_MS"])


# What _holder reads of a deployment holding a backend: a row has a dozen more JSON fields (its
# phase times, traffic, compose summary...), decoded for every holder at every routing change,
# under the router lock: the whole derivation took 22 ms at 100 apps with them, 16 ms without.
HOLDER_FIELDS = ("app", "colour", "health_check", "containers", "serves_backup", "canary_percent", "previous",
                 "previous__containers")


def app_routes() -> list[AppRoute]:
    """Every app's route. A colour held by a deployment is checked the way that deployment was
    verified, so editing the health path never fails a live release."""
    holders: dict[int, dict[str, Deployment]] = {}
    held = Deployment.objects.filter(holds_backend=True).select_related("previous").only(*HOLDER_FIELDS)
    for deployment in held.order_by("id"):
        holders.setdefault(deployment.app_id, {})[deployment.colour] = deployment
    routes = []
    for app in App.objects.prefetch_related("domains").select_related("certificate"):
        health = HealthCheck(**app.current_health_check())
        routes.append(app_route(name=app.name, hostnames=tuple(app.hostnames()), live_colour=app.live_colour,
                                holders=tuple(_holder(d, health) for d in holders.get(app.id, {}).values()),
                                health=health, tls=served_tls(app), canary_steps=bool(app.canary_steps)))
    return routes


def _holder(deployment: Deployment, app_health: HealthCheck) -> Holder:
    previous = deployment.previous
    return Holder(colour=deployment.colour,
                  health=HealthCheck(**deployment.health_check) if deployment.health_check else app_health,
                  servers=servers(deployment.containers),
                  backups=servers(previous.containers) if deployment.serves_backup and previous else (),
                  canary_percent=deployment.canary_percent)


def servers(containers: list[Container]) -> tuple[Server, ...]:
    return tuple(Server(c.ip, c.port) for c in containers)


def served_tls(app: App) -> Tls | None:
    """How HAProxy serves the app's certificate, if it has one it can serve now: one that ran
    out, was stored around the upload's checks or that HAProxy refused is left out, so that
    HAProxy still starts for every app; the app page says why (presenters.certificate)."""
    certificate = getattr(app, "certificate", None)
    if certificate is None or not certificate.chain_pem:
        return None
    held = held_tls(app, certificate)
    problem = _left_out(certificate, held)
    if problem:
        log.warning("certificate of %s left out of HAProxy: %s", app.name, problem)
        return None
    return held


def held_tls(app: App, certificate: Certificate, pem: str | None = None) -> Tls:
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
    return _left_out(certificate, held_tls(app, certificate))


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

"""An app's domains and its certificate: which names an app may have (checked when it is created
or its settings change), and a person's own certificate instead of ACME's."""
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments import enqueue
from deployments.application.errors import InvalidInput, TooSoon
from deployments.audit import Actor, record
from deployments.certificates import app_certificates
from deployments.haproxy import tls
from deployments.models import App, Certificate, Domain
from deployments.validators import validate_domain


def unique_hosts(domains: list[str]) -> list[str]:
    return list(dict.fromkeys(h.lower() for h in domains))


def count_errors(domains: list[str]) -> dict[str, list[str]]:
    """Each domain is an SNI filter on the app's crt-list line: too many and HAProxy refuses the line."""
    most = settings.SWITCHYARD["MAX_APP_DOMAINS"]
    if len(domains) <= most:
        return {}
    return {"domains": [f"an app has at most {most} domains (SWITCHYARD_MAX_APP_DOMAINS); this one would have "
                        f"{len(domains)}"]}


def new_domain_errors(domains: list[str], *, owner) -> dict[str, list[str]]:
    """Each name valid and free for `owner` to take."""
    messages = []
    for hostname in domains:
        try:
            validate_domain(hostname.lower())
        except ValidationError as error:
            messages += error.messages
            continue
        messages += _claim_errors(hostname.lower(), owner)
    return {"domains": messages} if messages else {}


def _claim_errors(host: str, owner) -> list[str]:
    """A name is refused if it is the panel's (or under it), any app's already, or under or above
    another owner's domain: a parent domain can set cookies for its children and a child can be
    mistaken for its parent's service, so one name tree belongs to one owner."""
    panel = settings.SWITCHYARD["PANEL_DOMAIN"]
    if panel and (host == panel or host.endswith(f".{panel}")):
        return [f"{host!r} is the panel's own domain or a name under it (SWITCHYARD_PANEL_DOMAIN); give the app another"]
    if Domain.objects.filter(hostname=host).exists():
        return [f"{host!r} is already a domain of another app"]
    labels = host.split(".")
    parents = [".".join(labels[i:]) for i in range(1, len(labels))]
    others = Domain.objects.exclude(app__owner=owner)  # apps without an owner are the administrator's
    clash = (others.filter(hostname__in=parents).values_list("hostname", flat=True).first()
             or others.filter(hostname__endswith=f".{host}").values_list("hostname", flat=True).first())
    if clash:
        return [f"{host!r} is under or above {clash!r}, a domain of another owner's app; use a name of your own"]
    return []


def upload_certificate(app: App, *, chain_pem: str, key_pem: str, actor: Actor) -> Certificate:
    """Serve the app's domains with a person's own certificate instead of ACME's; the worker puts
    it into HAProxy. Refused (nothing changes) with what to fix if it cannot be served."""
    if len(chain_pem) > tls.MAX_PEM_BYTES or len(key_pem) > tls.MAX_PEM_BYTES:  # before any parsing
        raise InvalidInput({"certificate": [f"a certificate or key is at most {tls.MAX_PEM_BYTES // 1024} KiB of PEM"]})
    interval = settings.SWITCHYARD["CERTIFICATE_UPLOAD_INTERVAL"]
    if cache.get(certificate_upload_key(app)):  # each stored upload may reload HAProxy (a long chain) for every app
        raise TooSoon({"certificate": [f"one certificate upload per app every {interval} s "
                                       "(SWITCHYARD_CERTIFICATE_UPLOAD_INTERVAL); try again shortly"]})
    try:
        # check_upload runs haproxy -c: not inside the transaction
        verdict_key = app_certificates.check_upload(app, chain_pem, key_pem)
    except tls.InvalidCertificate as error:
        raise InvalidInput({"certificate": [str(error)]}) from None
    with transaction.atomic():
        certificate = app_certificates.upload(app, chain_pem, key_pem, verdict_key)
        record(actor, "certificate.upload", app, f"for {', '.join(certificate.domains)}, until {certificate.not_after:%Y-%m-%d}")
        enqueue.send_apply_certificates()
    if interval:
        cache.set(certificate_upload_key(app), 1, timeout=interval)
    return certificate


def certificate_upload_key(app: App) -> str:
    return f"certificate-upload:{app.pk}"


def use_acme_certificate(app: App, *, actor: Actor) -> bool:
    """Drop an uploaded certificate: ACME issues one for the app's domains. False if none was uploaded."""
    with transaction.atomic():
        if not app_certificates.use_acme(app):
            return False
        record(actor, "certificate.acme", app, "the uploaded certificate is replaced by one from ACME")
        enqueue.request_certificate(app)
    return True

"""Each app's certificate: issued through ACME after a domain is added, renewed when a third of
its life is left, retried with backoff after a failure, or uploaded by a person instead.

The web process only marks what is wanted (request) and enqueues; the worker does the rest
(issue_due), so ACME traffic, keys and HAProxy's files stay out of the web process. Only one
worker works on a certificate at a time: an attempt first takes a lease (a conditional
UPDATE of next_attempt_at), and the lease ends by itself if that worker dies.

While an attempt fails the app keeps serving: over HTTP, and over HTTPS with the certificate
it had, until that one runs out.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import crypto
from deployments.certificates import acme_client
from deployments.haproxy import process as haproxy_process, tls
from deployments.models import AcmeAccount, App, Certificate
from deployments.traffic import changes, checks

logger = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=24)
LEASE = timedelta(seconds=acme_client.ORDER_TIMEOUT + 3 * acme_client.NETWORK_TIMEOUT)

Status = Certificate.Status


def request(app: App) -> bool:
    """After the app's domains changed: mark its certificate wanted if it does not cover every
    public domain. Returns whether a worker should look (the caller enqueues). No ACME here."""
    domains = app.public_domains()
    certificate = Certificate.objects.filter(app=app).first()
    if not domains or (certificate and certificate.source == Certificate.Source.UPLOADED):
        return False
    if certificate is None:
        Certificate.objects.create(app=app, status=Status.PENDING, next_attempt_at=timezone.now())
        return True
    if certificate.status == Status.VALID and set(domains) <= set(certificate.domains):
        return False
    Certificate.objects.filter(pk=certificate.pk).update(status=Status.PENDING, next_attempt_at=timezone.now(),
                                                         failures=0, error="")
    return True


def panel_domains() -> list[str]:
    """The panel's own domain (SWITCHYARD_PANEL_DOMAIN) if it can have a certificate."""
    domain = settings.SWITCHYARD["PANEL_DOMAIN"]
    return [domain] if domain and not domain.endswith(".localhost") and domain != "localhost" else []


def request_panel() -> None:
    """Mark the panel's certificate wanted if its domain is set and not covered; remove it once
    the domain is unset. Called by the periodic task only, so one process makes the row."""
    domains = panel_domains()
    certificate = Certificate.objects.filter(app=None).first()
    if not domains:
        if certificate is not None:
            _remove(certificate)
        return
    if certificate is None:
        Certificate.objects.create(app=None, status=Status.PENDING, next_attempt_at=timezone.now())
    elif certificate.status == Status.VALID and not set(domains) <= set(certificate.domains):
        Certificate.objects.filter(pk=certificate.pk).update(status=Status.PENDING, next_attempt_at=timezone.now(),
                                                             failures=0, error="")


def due() -> list[int]:
    """Ids of certificates a worker should attempt now: wanted or failed ones whose time has
    come, and ACME ones a third of whose life is left."""
    if not settings.SWITCHYARD["ACME_DIRECTORY"]:
        return []
    now = timezone.now()
    waiting = Certificate.objects.filter(source=Certificate.Source.ACME, status__in=[Status.PENDING, Status.FAILED],
                                         next_attempt_at__lte=now)
    renewals = [c.pk for c in Certificate.objects.filter(source=Certificate.Source.ACME, status=Status.VALID)
                if c.not_after and c.renewal_due_at() <= now and (c.next_attempt_at is None or c.next_attempt_at <= now)]
    return [*waiting.values_list("pk", flat=True), *renewals]


def attempt(certificate_id: int) -> str:
    """Issue or renew one certificate, if this worker gets the lease. Returns what happened."""
    certificate = Certificate.objects.select_related("app").filter(pk=certificate_id).first()
    if certificate is None or not _take_lease(certificate):
        return f"certificate #{certificate_id}: another worker has it, or it is gone"
    domains = certificate.app.public_domains() if certificate.app else panel_domains()
    if not domains:
        _remove(certificate)
        return f"{certificate.holder}: no public domain left; certificate removed"
    key_pem = tls.new_private_key_pem()
    try:
        issued = acme_client.issue(settings.SWITCHYARD["ACME_DIRECTORY"], settings.SWITCHYARD["ACME_CA_BUNDLE"],
                                   _account_key(), settings.SWITCHYARD["ACME_EMAIL"], domains, key_pem,
                                   publish=changes.publish_challenge, withdraw=changes.withdraw_challenge)
    except acme_client.AcmeFailed as failure:
        return _failed(certificate, str(failure))
    _remember_account(issued.account_uri)
    _serve(certificate, issued.chain_pem, key_pem, Certificate.Source.ACME)
    return f"{certificate.holder}: certificate issued for {', '.join(domains)}"


def check_upload(app: App, chain_pem: str, key_pem: str) -> str:
    """Whether a person's own certificate can be served for the app: checked first on its own
    (tls.check_pair), then by HAProxy itself in a config holding only it, on the crt-list line it
    will have (one certificate HAProxy refuses in its files keeps it from starting for every app).
    Outside any transaction: the check runs a process. Returns what HAProxy's verdict is
    remembered by (for upload); raises tls.InvalidCertificate with what to fix."""
    facts = tls.check_pair(chain_pem, key_pem)
    domains = app.public_domains()
    if not domains:
        raise tls.InvalidCertificate(f"{app.name} has no domain of its own to serve a certificate for; add the domain first")
    uncovered = [host for host in domains if not Certificate(domains=list(facts.names)).covers(host)]
    if uncovered:
        raise tls.InvalidCertificate(f"the certificate is for {', '.join(facts.names)}: it does not cover "
                                     f"{', '.join(uncovered)}, a domain of {app.name}; use one that names every domain "
                                     "of the app, or remove the domain first")
    try:
        return checks.check_certificate(app, chain_pem, key_pem, facts.names)
    except haproxy_process.HAProxyConfigInvalid as error:
        raise tls.InvalidCertificate(f"HAProxy cannot load the certificate with {app.name}'s domains as its SNI "
                                     f"filters: {error}") from None


def upload(app: App, chain_pem: str, key_pem: str, verdict_key: str) -> Certificate:
    """A person's own certificate instead of ACME's, once check_upload passed (and returned
    `verdict_key`). Only stored here (the web process may run this); the worker puts it into
    HAProxy (tasks.apply_certificates, or the next reconcile)."""
    certificate, _ = Certificate.objects.get_or_create(app=app)
    _store(certificate, chain_pem, key_pem, Certificate.Source.UPLOADED, verdict_key)
    return Certificate.objects.get(pk=certificate.pk)


def use_acme(app: App) -> bool:
    """Drop an uploaded certificate: ACME issues one (the caller enqueues). False if there was none."""
    updated = Certificate.objects.filter(app=app, source=Certificate.Source.UPLOADED).update(
        source=Certificate.Source.ACME, status=Status.PENDING, next_attempt_at=timezone.now(), failures=0, error="")
    return bool(updated)


def backoff(failures: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after each failure in a row, at most a day."""
    return min(FIRST_RETRY * 2 ** max(failures - 1, 0), LONGEST_RETRY)


def _take_lease(certificate: Certificate) -> bool:
    now = timezone.now()
    return bool(Certificate.objects.filter(pk=certificate.pk, next_attempt_at=certificate.next_attempt_at)
                .update(next_attempt_at=now + LEASE))


def _failed(certificate: Certificate, reason: str) -> str:
    failures = certificate.failures + 1
    retry_at = timezone.now() + backoff(failures)
    Certificate.objects.filter(pk=certificate.pk).update(status=Status.FAILED, error=reason, failures=failures,
                                                         next_attempt_at=retry_at, updated_at=timezone.now())
    logger.warning("certificate of %s: %s (attempt %s; next at %s)", certificate.holder, reason, failures, retry_at)
    return f"{certificate.holder}: {reason}; retrying at {retry_at:%H:%M:%S}"


def _serve(certificate: Certificate, chain_pem: str, key_pem: str, source: str) -> None:
    """Store the certificate and put it into HAProxy (files, then runtime) in one step."""
    with changes.certificates_changing():
        _store(certificate, chain_pem, key_pem, source)


def _store(certificate: Certificate, chain_pem: str, key_pem: str, source: str, verdict_key: str = "") -> None:
    """verdict_key: what HAProxy loaded (check_upload); none for ACME's, which are made here."""
    facts = tls.facts(chain_pem)
    Certificate.objects.filter(pk=certificate.pk).update(
        source=source, status=Status.VALID, domains=list(facts.names), chain_pem=chain_pem,
        encrypted_key=crypto.encrypt(key_pem), issuer=facts.issuer, not_before=facts.not_before,
        not_after=facts.not_after, error="", failures=0, next_attempt_at=None, updated_at=timezone.now(),
        haproxy_checked=verdict_key, haproxy_refusal="")


def _remove(certificate: Certificate) -> None:
    with changes.certificates_changing():
        Certificate.objects.filter(pk=certificate.pk).delete()


def _account_key() -> acme_client.AccountKey:
    """This directory's account, or a new key to register it with (stored on first success)."""
    directory = settings.SWITCHYARD["ACME_DIRECTORY"]
    account = AcmeAccount.objects.filter(directory=directory).first()
    if account is not None:
        return acme_client.AccountKey(key_pem=account.key_pem, uri=account.uri)
    with transaction.atomic():
        account, _ = AcmeAccount.objects.get_or_create(
            directory=directory, defaults={"encrypted_key": crypto.encrypt(tls.new_account_key_pem()), "uri": "",
                                           "email": settings.SWITCHYARD["ACME_EMAIL"]})
    return acme_client.AccountKey(key_pem=account.key_pem, uri=account.uri)


def _remember_account(uri: str) -> None:
    AcmeAccount.objects.filter(directory=settings.SWITCHYARD["ACME_DIRECTORY"], uri="").update(uri=uri)

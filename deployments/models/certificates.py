"""HTTPS: Switchyard's ACME accounts and each app's (and the panel's) certificate."""
from django.db import models
from django.utils import timezone

from deployments import crypto
from deployments.models.apps import App


class AcmeAccount(models.Model):
    """Switchyard's account at an ACME server (one per directory URL); its key never leaves here."""
    directory = models.URLField(max_length=500, unique=True)
    email = models.CharField(max_length=254, blank=True)
    uri = models.URLField(max_length=500)
    encrypted_key = models.TextField()  # the account's private key, PEM, encrypted like env vars
    created_at = models.DateTimeField(default=timezone.now)

    @property
    def key_pem(self) -> str:
        return crypto.decrypt(self.encrypted_key)


class Certificate(models.Model):
    """The certificate an app's domains are served with over HTTPS, issued through ACME or
    uploaded, and where getting the next one stands. The certificate served stays in place
    while a renewal fails: the app goes on serving it (and plain HTTP) meanwhile."""

    class Source(models.TextChoices):
        ACME = "acme", "ACME"
        UPLOADED = "uploaded", "uploaded"

    class Status(models.TextChoices):
        PENDING = "pending"  # to be issued or renewed (a worker will)
        VALID = "valid"  # serving, nothing to do until its renewal time
        FAILED = "failed"  # the last attempt failed: error says why, next_attempt_at when it retries

    # None: the panel's own, for SWITCHYARD_PANEL_DOMAIN (one row, made by the worker: certificates.due).
    app = models.OneToOneField(App, null=True, blank=True, on_delete=models.CASCADE, related_name="certificate")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ACME)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # What is served (empty until the first one is issued or uploaded).
    domains = models.JSONField(default=list, blank=True)  # names it covers, from the certificate itself
    chain_pem = models.TextField(blank=True)  # the certificate, then its intermediates
    encrypted_key = models.TextField(blank=True)
    issuer = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    # HAProxy's own verdict (`haproxy -c` on a config holding this certificate alone, on its crt-list
    # line), remembered by what it was given (config.Tls.verdict_key): a render reads it, never runs it.
    haproxy_checked = models.CharField(max_length=64, blank=True)
    haproxy_refusal = models.TextField(blank=True)  # HAProxy's words; empty: it loaded them
    # The last attempt to get one.
    error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)  # in a row; the retry waits longer each time
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"certificate of {self.holder}"

    @property
    def holder(self) -> str:
        return self.app.name if self.app else "the panel"

    @property
    def serving(self) -> bool:
        return bool(self.chain_pem and self.not_after and self.not_after > timezone.now())

    @property
    def key_pem(self) -> str:
        return crypto.decrypt(self.encrypted_key) if self.encrypted_key else ""

    def renewal_due_at(self):
        """When a third of its life is left."""
        return self.not_after - (self.not_after - self.not_before) / 3

    def haproxy_refused(self, verdict_key: str) -> str:
        """HAProxy's refusal of the certificate and SNI filters `verdict_key` names, if it last
        checked exactly those and refused them ("" if it loaded them or never checked them)."""
        return self.haproxy_refusal if self.haproxy_checked == verdict_key else ""

    def covers(self, host: str) -> bool:
        """Whether the served certificate is valid for `host` (a wildcard covers one label)."""
        return any(host == name or (name.startswith("*.") and host.partition(".")[2] == name[2:])
                   for name in self.domains)

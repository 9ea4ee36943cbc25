"""What belongs to a user rather than an app: API tokens and quotas; and the audit log of who did what."""
import hashlib
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from deployments.models.apps import App
from deployments.validators import validate_finite


class ApiToken(models.Model):
    """A bearer token that acts as its user. Only a hash is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    PREFIX = "sy_"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        token = cls.PREFIX + secrets.token_urlsafe(32)
        return cls.objects.create(user=user, name=name, token_hash=cls.hash(token), prefix=token[:10]), token

    @classmethod
    def user_for(cls, token: str):
        """The active user a token belongs to, or None."""
        found = cls.objects.select_related("user").filter(token_hash=cls.hash(token)).first()
        if found is None or not found.user.is_active:
            return None
        cls.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        return found.user


class AuditEvent(models.Model):
    """One state-changing action: who, when, from where, through what. App and user names
    are copied, so the record outlives both."""

    class Via(models.TextChoices):
        PANEL = "panel", "Panel"
        API = "api", "API"
        CLI = "cli", "CLI"
        WEBHOOK = "webhook", "Webhook"
        ADMIN = "admin", "Admin"
        FLEET = "fleet", "Fleet"  # what the broker saw: an agent refused (fleet/credentials.py)

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices)
    address = models.GenericIPAddressField(null=True, blank=True)
    app = models.ForeignKey(App, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    app_name = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["app_name", "-at"]), models.Index(fields=["-at"])]


class Quota(models.Model):
    """What a superuser grants one user beyond the administrator's ceilings (settings
    SWITCHYARD_MAX_APP_* and SWITCHYARD_USER_MAX_*); a blank field keeps the setting's value.
    Edited in Django admin; deployments/quotas.py applies it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    app_memory_mb = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(65536)],
                                                help_text="memory of each container of an app, MiB")
    app_cpus = models.FloatField(null=True, blank=True, validators=[validate_finite, MinValueValidator(0.05),
                                                                    MaxValueValidator(64)],
                                 help_text="CPUs of each container of an app")
    app_pids = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(32768)],
                                           help_text="processes of each container of an app")
    app_containers = models.PositiveIntegerField(null=True, blank=True, help_text="containers of one app")
    app_watch_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="watch window of an app, seconds")
    app_canary_seconds = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text="canary of an app (steps below 100 % × seconds each)")
    apps = models.PositiveIntegerField(null=True, blank=True, help_text="apps the user may own")
    memory_mb = models.PositiveIntegerField(null=True, blank=True,
                                            help_text="memory of all the user's containers together, MiB")
    containers = models.PositiveIntegerField(null=True, blank=True, help_text="containers of all the user's apps")

    def __str__(self) -> str:
        return f"quota of {self.user}"

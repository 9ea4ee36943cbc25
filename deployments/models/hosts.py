"""The fleet: the machines an agent runs on (deployments/fleet/). With no row here, Switchyard is
the single machine it always was: the panel's own Docker and HAProxy, no agent, no registry."""
import hashlib
import secrets

from django.db import models
from django.utils import timezone


class Host(models.Model):
    """A machine whose agent (a Celery worker on the queue `host.<name>`, with its own Docker and
    HAProxy) connects out to the broker with a credential of its own. Only the credential's hash
    is stored: Redis checks it (an ACL user per host, fleet/credentials.py) and the panel never
    needs it again; it is shown once, in the command that starts the agent."""

    class State(models.TextChoices):
        NEW = "new"  # added; its agent has not been heard from yet
        HEALTHY = "healthy"  # heartbeats arrive
        SUSPECT = "suspect"  # none for SUSPECT_AFTER seconds
        DOWN = "down"  # none for DOWN_AFTER seconds

    name = models.SlugField(max_length=40, unique=True)
    address = models.GenericIPAddressField(help_text="the host's private address: its containers are published there")
    labels = models.JSONField(default=dict, blank=True)  # {"zone": "a", "gpu": "yes"}: placement picks by them
    credential_hash = models.CharField(max_length=64)  # sha256 of the agent's credential, hex (Redis ACL form)
    revoked_at = models.DateTimeField(null=True, blank=True)  # its credential no longer opens the broker
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEW)
    state_since = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    facts = models.JSONField(default=dict, blank=True)  # what the last heartbeat said (agent.HostFacts)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def new_credential() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash(credential: str) -> str:
        return hashlib.sha256(credential.encode()).hexdigest()

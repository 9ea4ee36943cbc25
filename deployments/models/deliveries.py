"""What comes in and what goes out: webhook deliveries (a provider's push), deploy-event targets
and each event's delivery to them."""
from django.db import models
from django.utils import timezone

from deployments.models.apps import App
from deployments.models.defaults import new_secret
from deployments.models.deployments import Deployment
from deployments.validators import validate_emails, validate_event_url


class WebhookDelivery(models.Model):
    """One request to an app's webhook, whatever came of it."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField(default=timezone.now)
    provider = models.CharField(max_length=20)
    event = models.CharField(max_length=60, blank=True)
    delivery_id = models.CharField(max_length=100, blank=True)
    status_code = models.PositiveSmallIntegerField()
    result = models.CharField(max_length=300)
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The push as read from a verified delivery (kind, branch, sha, pusher), for Redeliver.
    push = models.JSONField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["app", "provider", "delivery_id"])]


EVENTS = ("succeeded", "failed", "rolled_back", "cancelled")  # how a deployment can end, as events


def all_events() -> list[str]:
    return list(EVENTS)


class NotificationTarget(models.Model):
    """Where an app's deploy events go (outgoing/events.py sends them)."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Signed JSON webhook"
        SLACK = "slack", "Slack-compatible webhook"
        EMAIL = "email", "E-mail"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="notification_targets")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.CharField(max_length=500, blank=True, validators=[validate_event_url])  # webhook, slack
    emails = models.CharField(max_length=500, blank=True, validators=[validate_emails])  # email
    # Signs each webhook delivery (X-Switchyard-Signature: sha256=HMAC of the body).
    secret = models.CharField(max_length=64, default=new_secret)
    events = models.JSONField(default=all_events)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.url or self.emails}"


class EventDelivery(models.Model):
    """One event sent (or to send) to one target, or as a commit status to the git provider,
    with every attempt's outcome. Retried with backoff until delivered or out of attempts."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack"
        EMAIL = "email"
        COMMIT_STATUS = "commit_status"

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="event_deliveries")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="event_deliveries")
    target = models.ForeignKey(NotificationTarget, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="deliveries")
    kind = models.CharField(max_length=15, choices=Kind.choices)
    event = models.CharField(max_length=20)  # an EVENTS entry, or "started" (a commit status)
    url = models.CharField(max_length=500, blank=True)  # where it goes (e-mail: the addresses)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(
            fields=["deployment", "target", "kind", "event"], condition=models.Q(redelivery_of=None),
            name="one_event_per_deployment_target")]

"""What the panel, the API and the CLI do with an app's deploy-event targets, its commit-status
token and its event deliveries: validated first, recorded in the audit log. Sending is the
worker's (outgoing/events.py)."""
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor, record
from deployments.models import EVENTS, App, EventDelivery, NotificationTarget
from deployments.outgoing import commit_status, events

MAX_TARGETS = 10
MAX_TOKEN_LENGTH = 255


def add_target(app: App, *, kind: str, url: str = "", emails: str = "", on: list[str] | None = None,
               actor: Actor) -> NotificationTarget:
    """A webhook or Slack target needs a URL, an e-mail target addresses; `on` the events it
    wants (default: every end)."""
    wanted = list(EVENTS) if on is None else list(on)
    target = NotificationTarget(app=app, kind=kind, url=url.strip(), emails=emails.strip(), events=wanted)
    errors = _errors(target)
    if app.notification_targets.count() >= MAX_TARGETS:
        errors.setdefault("kind", []).append(f"an app has at most {MAX_TARGETS} targets; delete one first")
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        target.save()
        record(actor, "notifications.add", app, f"{kind} {target.url or target.emails}")
    return target


def _errors(target: NotificationTarget) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        target.full_clean(exclude=["app", "secret", "events"])
    except ValidationError as error:
        errors = error.message_dict
    if target.kind in (NotificationTarget.Kind.WEBHOOK, NotificationTarget.Kind.SLACK) and not target.url:
        errors.setdefault("url", []).append("a webhook target needs the URL to POST to")
    if target.kind == NotificationTarget.Kind.EMAIL and not target.emails:
        errors.setdefault("emails", []).append("an e-mail target needs at least one address")
    if not isinstance(target.events, list) or not target.events or any(e not in EVENTS for e in target.events):
        errors.setdefault("events", []).append(f"choose among {', '.join(EVENTS)}")
    return errors


def delete_target(app: App, *, target_id: int, actor: Actor) -> bool:
    target = app.notification_targets.filter(pk=target_id).first()
    if target is None:
        return False
    with transaction.atomic():
        target.delete()
        record(actor, "notifications.delete", app, f"{target.kind} {target.url or target.emails}")
    return True


def set_commit_status_token(app: App, *, token: str, actor: Actor) -> None:
    """The git provider token commit statuses are posted with ("" removes it). Stored encrypted."""
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH or any(ord(c) <= 32 or ord(c) > 126 for c in token):
        raise InvalidInput({"commit_status_token": ["a provider token is one word of printable ASCII"]})
    with transaction.atomic():
        app.commit_status_token = token
        # The token goes to this host only, whatever the repository URL becomes (outgoing/commit_status.py).
        app.commit_status_token_host = commit_status.repository_host(app.repo_url) if token else ""
        app.save(update_fields=["encrypted_commit_status_token", "commit_status_token_host"])
        record(actor, "notifications.token", app, "commit status token " + ("set" if token else "removed"))


def redeliver(app: App, *, delivery_id: int, actor: Actor) -> EventDelivery:
    delivery = app.event_deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise NotPossible(f"{app.name} has no event delivery #{delivery_id}")
    if delivery.state in (EventDelivery.State.PENDING, EventDelivery.State.SENDING):
        raise NotPossible(f"delivery #{delivery_id} is still being sent")
    with transaction.atomic():
        copy = events.redeliver(delivery)
        record(actor, "notifications.redeliver", app, f"event delivery #{delivery_id} as #{copy.pk}")
    return copy

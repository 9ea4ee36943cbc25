"""Deploy events: when a deployment ends (succeeded, failed, rolled back, cancelled), each of its
app's notification targets gets one delivery — a signed JSON webhook, a Slack-compatible
message or an e-mail — carrying the reason and the traffic proof; a deployment from a push also
sets the commit's status on the git provider (pending when it starts, then success or failure)
when the app has a provider token.

Deliveries are rows (EventDelivery), recorded in the same transaction as the state change that
causes them (lifecycle.py), so an event is neither lost to a dying worker nor sent twice: the
unique constraint allows one per deployment, target and event. Sending claims a row with a
conditional UPDATE (pending → sending); a failed attempt is retried with exponential backoff
(SWITCHYARD_EVENT_RETRY_SECONDS × 2^n) up to SWITCHYARD_EVENT_MAX_ATTEMPTS. Redeliver sends a
copy. Targets given by users are checked again at each send (pinned_http.py): the host must
resolve to public addresses only, and the connection goes to the address that was checked.
"""
import hashlib
import hmac
import json
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from deployments.outgoing import commit_status, pinned_http
from deployments.models import EVENTS, Deployment, EventDelivery, WebhookDelivery
from deployments.validators import email_addresses

Kind, State = EventDelivery.Kind, EventDelivery.State
# Sent (on commit) with the ids of deliveries ready to go; enqueue.py sends them at once.
deliveries_recorded = Signal()
GITHUB_STATES = {"started": "pending", "succeeded": "success", "failed": "failure", "rolled_back": "failure",
                 "cancelled": "error"}
COMMIT_STATES = {  # provider → deployment end (or "started") → its word (Gitea and Forgejo speak GitHub's)
    "github": GITHUB_STATES, "gitea": GITHUB_STATES, "forgejo": GITHUB_STATES,
    "gitlab": {"started": "running", "succeeded": "success", "failed": "failed", "rolled_back": "failed",
               "cancelled": "canceled"},
}


class Undeliverable(Exception):
    """This delivery cannot succeed as it is (a private address, no provider URL); no retry."""


# Recording (inside the state change's transaction) -------------------------------------------

def record_end(deployment_id: int) -> None:
    """The deployment reached a final state: one delivery per target that wants the event, and
    the commit status. Superseded deployments never ran and send nothing."""
    deployment = Deployment.objects.select_related("app").get(pk=deployment_id)
    if deployment.state not in EVENTS:
        return
    payload = payload_of(deployment)
    created = [EventDelivery.objects.create(app=deployment.app, deployment=deployment, target=target,
                                            kind=target.kind, event=deployment.state, payload=payload,
                                            url=target.url or target.emails)
               for target in deployment.app.notification_targets.all() if deployment.state in target.events]
    created += _commit_status(deployment, deployment.state)
    _announce(created)


def record_start(deployment_id: int) -> None:
    """A deployment from a push started: its commit is marked pending."""
    deployment = Deployment.objects.select_related("app").get(pk=deployment_id)
    _announce(_commit_status(deployment, "started"))


def _commit_status(deployment: Deployment, event: str) -> list[EventDelivery]:
    """The status, to the host the app's token was stored for (outgoing/commit_status.py); a refusal
    is recorded as a failed delivery with its reason, so the app's admins see why none was sent."""
    push = _push_of(deployment)
    if push is None or not deployment.app.encrypted_commit_status_token or not deployment.commit_sha:
        return []
    provider, repository = push
    body = _status_body(provider, COMMIT_STATES[provider][event], deployment)
    try:
        url = commit_status.destination(deployment.app, provider=provider, repository=repository,
                                        sha=deployment.commit_sha).url
    except commit_status.Refused as refusal:
        EventDelivery.objects.create(app=deployment.app, deployment=deployment, kind=Kind.COMMIT_STATUS, event=event,
                                     payload=body, state=State.FAILED, last_error=str(refusal)[:300])
        return []
    return [EventDelivery.objects.create(app=deployment.app, deployment=deployment, kind=Kind.COMMIT_STATUS,
                                         event=event, url=url, payload=body)]


def _push_of(deployment: Deployment) -> tuple[str, str] | None:
    """(provider, repository) of the push that queued it, for the providers with commit statuses."""
    if deployment.trigger != Deployment.Trigger.WEBHOOK:
        return None
    delivery = WebhookDelivery.objects.filter(deployment=deployment, status_code=202).exclude(push=None).first()
    if delivery is None or delivery.provider not in COMMIT_STATES:
        return None
    return delivery.provider, str(delivery.push.get("repository") or "")


def _status_body(provider: str, state: str, deployment: Deployment) -> dict:
    description = summary(deployment)[:140]
    if provider == "gitlab":
        return {"state": state, "name": "switchyard", "target_url": deployment_url(deployment),
                "description": description}
    return {"state": state, "context": "switchyard", "target_url": deployment_url(deployment),
            "description": description}


def _announce(created: list[EventDelivery]) -> None:
    ids = [delivery.id for delivery in created]
    if ids:
        transaction.on_commit(lambda: deliveries_recorded.send(sender=EventDelivery, ids=ids))


# What an event says ----------------------------------------------------------------------------

def deployment_url(deployment: Deployment) -> str:
    return f"{settings.SWITCHYARD['PUBLIC_URL']}/deployments/{deployment.pk}/"


def summary(deployment: Deployment) -> str:
    """One line: "shop #12 succeeded: 1,234 requests, 0 failed", or the phase it is in."""
    words = {"succeeded": "succeeded", "failed": "failed", "rolled_back": "was rolled back",
             "cancelled": "was cancelled", "running": "is deploying", "queued": "is queued"}
    text = f"{deployment.app.name} #{deployment.pk} {words.get(deployment.state, deployment.state)}"
    proof = deployment.traffic_summary
    return text + (f": {proof[0]:,} requests, {proof[1]:,} failed" if proof else "")


def payload_of(deployment: Deployment) -> dict:
    proof = deployment.traffic_summary
    return {
        "event": f"deployment.{deployment.state}", "app": deployment.app.name, "summary": summary(deployment),
        "reason": deployment.error,
        "deployment": {"id": deployment.pk, "state": deployment.state, "ref": deployment.ref,
                       "commit": deployment.commit_sha, "trigger": deployment.trigger,
                       "triggered_by": deployment.triggered_by, "url": deployment_url(deployment),
                       "started_at": _iso(deployment.started_at), "finished_at": _iso(deployment.finished_at)},
        "traffic": {"requests": proof[0], "failed": proof[1]} if proof else None,
        "canary": deployment.canary or None,
    }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


# Sending (in a worker) ---------------------------------------------------------------------------

def attempt(delivery_id: int) -> float | None:
    """Try one pending delivery that is due. Returns seconds until its retry, or None (delivered,
    out of attempts, not due, or someone else has it)."""
    now = timezone.now()
    claimed = EventDelivery.objects.filter(id=delivery_id, state=State.PENDING, next_attempt_at__lte=now).update(
        state=State.SENDING, next_attempt_at=now)
    if not claimed:
        return None
    delivery = EventDelivery.objects.select_related("app", "target").get(pk=delivery_id)
    final = False
    try:
        status = _send(delivery)
        error = "" if 200 <= status < 300 else f"HTTP {status}"
    except Undeliverable as problem:
        status, error, final = None, str(problem), True  # no retry can help
    except (pinned_http.Failed, OSError) as problem:
        status, error = None, str(problem)
    return _settle(delivery, status, error, final)


def _settle(delivery: EventDelivery, status: int | None, error: str, final: bool) -> float | None:
    """Record the attempt: only if this sender still holds the row (see due())."""
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_status": status, "last_error": error[:300]}
    held = EventDelivery.objects.filter(pk=delivery.pk, state=State.SENDING, attempts=delivery.attempts)
    if not error:
        held.update(state=State.DELIVERED, delivered_at=timezone.now(), **fields)
        return None
    if final or attempts >= settings.SWITCHYARD["EVENT_MAX_ATTEMPTS"]:
        held.update(state=State.FAILED, **fields)
        return None
    delay = settings.SWITCHYARD["EVENT_RETRY_SECONDS"] * 2 ** (attempts - 1)
    moved = held.update(state=State.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay), **fields)
    return delay if moved else None


DUE_BATCH = 500  # deliveries sent per periodic run; the rest the next run


def due() -> list[int]:
    """Pending deliveries whose time has come, the longest due first (whichever app they are
    for: by id, an old app's retries would go before a newer app's first attempt, and with many
    of them fill the batch), after putting back those a dead sender held (an attempt ends within
    EVENT_TIMEOUT, so a row held far longer has no live sender)."""
    stale = timedelta(seconds=3 * settings.SWITCHYARD["EVENT_TIMEOUT"] + 60)
    EventDelivery.objects.filter(state=State.SENDING, next_attempt_at__lt=timezone.now() - stale).update(
        state=State.PENDING)
    return list(EventDelivery.objects.filter(state=State.PENDING, next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at", "id").values_list("id", flat=True)[:DUE_BATCH])


def redeliver(delivery: EventDelivery) -> EventDelivery:
    """A copy of a delivery, sent again (the target's current address and secret)."""
    target = delivery.target
    copy = EventDelivery.objects.create(
        app=delivery.app, deployment=delivery.deployment, target=target, kind=delivery.kind, event=delivery.event,
        url=(target.url or target.emails) if target else delivery.url, payload=delivery.payload,
        redelivery_of=delivery)
    _announce([copy])
    return copy


def _send(delivery: EventDelivery) -> int:
    if delivery.kind == Kind.EMAIL:
        return _send_email(delivery)
    if delivery.kind == Kind.COMMIT_STATUS:
        return _send_commit_status(delivery)
    if delivery.target is None:
        raise Undeliverable("its target was deleted")
    if delivery.kind == Kind.SLACK:
        return _post(delivery.target.url, _slack_message(delivery.payload), {})
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    signature = hmac.new(delivery.target.secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Switchyard-Event": delivery.payload["event"], "X-Switchyard-Delivery": str(delivery.pk),
               "X-Switchyard-Signature": f"sha256={signature}"}
    return _post(delivery.target.url, body, headers)


def _send_commit_status(delivery: EventDelivery) -> int:
    """Checked again at the send: the token goes to the host it was stored for, or nowhere."""
    try:
        check_public = commit_status.check_before_sending(delivery.app, delivery.url)
    except commit_status.Refused as refusal:
        raise Undeliverable(str(refusal)) from None
    return _post(delivery.url, delivery.payload, {"Authorization": f"Bearer {delivery.app.commit_status_token}"},
                 check_address=check_public)


def _slack_message(payload: dict) -> dict:
    """Slack's markup: &, < and > escaped, so an app's output quoted in the reason cannot ping
    the channel (<!channel>) or make links."""
    reason = f"\n> {_slack_escape(payload['reason'][:500])}" if payload.get("reason") else ""
    return {"text": f"<{payload['deployment']['url']}|{_slack_escape(payload['summary'])}>{reason}"}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _send_email(delivery: EventDelivery) -> int:
    target = delivery.target
    if target is None:
        raise Undeliverable("its target was deleted")
    payload = delivery.payload
    body = "\n\n".join(part for part in (payload["summary"], payload.get("reason") or "", payload["deployment"]["url"])
                       if part)
    send_mail(f"[Switchyard] {payload['summary']}", body, None, email_addresses(target.emails))
    return 250


def _post(url: str, body, headers: dict, check_address: bool = True) -> int:
    """check_address: a user's URL must resolve to public addresses only; provider URLs from settings need not."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        return pinned_http.post(url, data, {"Content-Type": "application/json", "User-Agent": "Switchyard", **headers},
                                check_public=check_address)
    except pinned_http.Unreachable as error:
        raise Undeliverable(str(error)) from None

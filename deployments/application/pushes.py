"""Deploy on push: a delivery to the webhook endpoint is recorded and, for a push to the app's
branch, exactly the pushed commit is queued; a recorded push can be acted on again (Redeliver).
Reading a provider's headers and payload is incoming/providers.py's; this decides and records."""
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from django.conf import settings
from django.db import transaction

from deployments import enqueue
from deployments.application.errors import NotPossible
from deployments.audit import Actor, Via, record
from deployments.engine import queue
from deployments.incoming import providers, repository
from deployments.models import App, Deployment, WebhookDelivery


@dataclass(frozen=True)
class Received:
    """One delivery as it travels from reading to recording: which app, from which provider,
    the push it carried (None if rejected), and the delivery it repeats (a Redeliver)."""
    app: App
    provider: str
    push: providers.Push | None = None
    redelivery_of: WebhookDelivery | None = None


def receive_webhook(app: App, *, headers, body: bytes, address: str | None = None,
                    within_budget: Callable[[], bool] = lambda: True) -> tuple[int, dict]:
    """Record a delivery and, for a push to the app's branch, queue exactly that commit.
    Returns (HTTP status, JSON body). Nothing is queued for any rejected or ignored delivery.
    A rejected one is first counted against the sender (`within_budget`): once over, 429 and
    nothing recorded. Verified deliveries are never counted, so a flood cannot hold them up."""
    provider_name = "unknown"
    try:
        provider = providers.identify(headers)
        provider_name = provider.name
        push = providers.read(provider, headers, body, app.webhook_secret)
    except providers.Rejected as rejection:
        if not within_budget():
            return 429, {"detail": "too many rejected deliveries from this address; try again in a minute"}
        _record_rejection(Received(app, provider_name), rejection)
        return rejection.status, {"detail": rejection.detail}
    return _act_on_push(Received(app, provider_name, push), Actor(user=None, via=Via.WEBHOOK, address=address))


def redeliver(delivery: WebhookDelivery, *, actor: Actor) -> tuple[int, dict]:
    """Act on a recorded push again (the duplicate check does not apply: a person asked)."""
    if not delivery.push:
        raise NotPossible("Only deliveries with a valid signature can be redelivered.")
    received = Received(delivery.app, delivery.provider, providers.Push(**delivery.push), redelivery_of=delivery)
    return _act_on_push(received, actor)


def _act_on_push(received: Received, actor: Actor) -> tuple[int, dict]:
    push = received.push
    with transaction.atomic():
        # One delivery of an app at a time (no double queue), each deciding on the app as it is now.
        app = App.objects.select_for_update().get(pk=received.app.pk)
        received = replace(received, app=app)
        reason = _ignore_reason(received)
        if reason:
            _record_delivery(received, status=200, result=f"ignored: {reason}")
            return 200, {"detail": f"ignored: {reason}"}
        deployment = queue.enqueue(app, push.branch or app.branch, Deployment.Trigger.WEBHOOK,
                                   push.pusher or received.provider, commit_sha=push.sha or "")
        enqueue.dispatch(deployment.id)
        result = f"queued deployment #{deployment.pk}" + (f" of {push.sha[:12]}" if push.sha else "")
        _record_delivery(received, status=202, result=result, deployment=deployment)
        record(actor, "webhook.redeliver" if received.redelivery_of else "deploy", app,
               f"{received.provider} push by {push.pusher or 'unknown'}: {result}")
    return 202, {"detail": result, "deployment": deployment.pk}


def _ignore_reason(received: Received) -> str:
    """Why a push queues nothing (empty: it deploys). A redelivery skips the duplicate check."""
    app, push = received.app, received.push
    if received.redelivery_of is None and push.delivery_id and WebhookDelivery.objects.filter(
            app=app, provider=received.provider, delivery_id=push.delivery_id, status_code__lt=300).exists():
        return f"duplicate delivery {push.delivery_id}"
    if push.kind != "push":
        return {"ping": "ping", "tag": "tag push"}.get(push.kind, f"{push.event or 'unknown'} event")
    if push.sha == providers.ZERO_SHA:
        return "branch deleted"
    if received.provider != providers.Generic.name:  # a Bearer delivery names no repository
        mismatch = repository.mismatch(app_name=app.name, repo_url=app.repo_url, payload_urls=push.repository_urls)
        if mismatch:
            return mismatch
    if push.branch is not None and push.branch != app.branch:
        return f"push to {push.branch}; {app.name} deploys {app.branch}"
    if not app.auto_deploy:
        return "auto-deploy is off"
    return ""


def _record_rejection(received: Received, rejection: providers.Rejected) -> None:
    """Record it and keep only the app's newest WEBHOOK_REJECTIONS_KEPT rejections, so forged
    deliveries from any number of addresses cannot grow the table without bound."""
    _record_delivery(received, status=rejection.status, result=f"rejected: {rejection.detail}")
    rejected = WebhookDelivery.objects.filter(app=received.app, status_code__gte=400)
    newest_dropped = rejected.order_by("-id").values_list("id", flat=True)[settings.WEBHOOK_REJECTIONS_KEPT:][:1]
    if newest_dropped:
        rejected.filter(id__lte=newest_dropped[0]).delete()


def _record_delivery(received: Received, *, status: int, result: str, deployment: Deployment | None = None
                     ) -> WebhookDelivery:
    push = received.push
    return WebhookDelivery.objects.create(
        app=received.app, provider=received.provider, event=(push.event if push else "")[:60],
        delivery_id=(push.delivery_id if push else "")[:100], status_code=status, result=result[:300],
        deployment=deployment, push=asdict(push) if push else None, redelivery_of=received.redelivery_of,
    )

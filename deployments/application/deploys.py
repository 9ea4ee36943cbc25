"""Deployments as a person asks for them: deploy a ref, redeploy a kept release, and, while one
runs, cancel, promote or abort it. The deploy engine does the work; this records who asked."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments import enqueue
from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor, Via, record
from deployments.engine import lifecycle, queue
from deployments.models import App, Deployment
from deployments.validators import validate_git_ref

# How a deployment records where it came from (its `trigger`), by the channel of the actor.
TRIGGER_OF = {Via.PANEL: Deployment.Trigger.UI, Via.ADMIN: Deployment.Trigger.UI, Via.API: Deployment.Trigger.API,
              Via.CLI: Deployment.Trigger.CLI, Via.WEBHOOK: Deployment.Trigger.WEBHOOK}


def deploy(app: App, *, ref: str | None, actor: Actor) -> Deployment:
    """Queue a deployment of `ref` (default: the app's branch)."""
    ref = ref or app.branch
    try:
        validate_git_ref(ref)
    except ValidationError as error:
        raise InvalidInput({"ref": error.messages})
    with transaction.atomic():
        deployment = queue.enqueue(app, ref, TRIGGER_OF[actor.via], actor.name)
        enqueue.dispatch(deployment.id)
        record(actor, "deploy", app, f"deployment #{deployment.pk} of {ref}")
    return deployment


def redeploy(source: Deployment, *, actor: Actor) -> Deployment:
    """Roll back (or forward) to a kept release: its image again, without fetch or build."""
    if source.state != Deployment.State.SUCCEEDED or not source.image:
        raise NotPossible(f"Deployment #{source.pk} did not succeed; only successful releases can be redeployed.")
    if source.image not in source.app.kept_images():
        raise NotPossible(f"The image {source.image} is no longer kept (only the last "
                          f"{settings.SWITCHYARD['KEEP_IMAGES']} are); deploy its commit instead.")
    with transaction.atomic():
        deployment = queue.enqueue(source.app, source.ref, TRIGGER_OF[actor.via], actor.name, redeploy_of=source)
        enqueue.dispatch(deployment.id)
        record(actor, "deployment.redeploy", source.app, f"deployment #{deployment.pk} redeploys #{source.pk}")
    return deployment


def cancel(deployment: Deployment, *, actor: Actor) -> Deployment:
    """Queued: ends at once. Running before the switch: the pipeline stops, removes what it
    started and ends `cancelled`. After the switch it is too late (the new release serves)."""
    outcome = lifecycle.request_cancel(deployment.pk, actor.name)
    if outcome in (lifecycle.CancelOutcome.CANCELLED, lifecycle.CancelOutcome.REQUESTED):
        return _recorded(actor, "deployment.cancel", deployment)
    if outcome == lifecycle.CancelOutcome.TOO_LATE:
        raise NotPossible("Too late to cancel: traffic has moved to the new release. Redeploy the previous one instead.")
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} already ended ({deployment.state}).")


def promote(deployment: Deployment, *, actor: Actor) -> Deployment:
    """Skip the rest of a canary (all traffic to the new release now) or of the watch window
    (the old release drains and retires now)."""
    if lifecycle.request_promote(deployment.pk, actor.name):
        return _recorded(actor, "deployment.promote", deployment)
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} is not in a canary or being watched ({_where(deployment)}).")


def abort(deployment: Deployment, *, actor: Actor) -> Deployment:
    """End a canary: all traffic back on the old release at once, the new one removed."""
    if lifecycle.request_abort(deployment.pk, actor.name):
        return _recorded(actor, "deployment.abort", deployment)
    deployment.refresh_from_db()
    raise NotPossible(f"Deployment #{deployment.pk} is not in a canary ({_where(deployment)}); "
                      "cancel it before the switch, or redeploy the previous release after it.")


def _where(deployment: Deployment) -> str:
    return f"it is {deployment.state}" + (f", {deployment.phase}" if deployment.state == Deployment.State.RUNNING else "")


def _recorded(actor: Actor, action: str, deployment: Deployment) -> Deployment:
    record(actor, action, deployment.app, f"deployment #{deployment.pk}")
    return Deployment.objects.get(pk=deployment.pk)

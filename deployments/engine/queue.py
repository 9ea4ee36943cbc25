"""One deployment per app at a time; the newest queued one wins.

Which deployment runs is decided here and in lifecycle.claim; handing it to a worker is
Celery's part (deployments/tasks.py), so the engine never imports a task.
"""
import redis
from django.conf import settings
from django.db import transaction

from deployments.engine import lifecycle
from deployments.engine.locks import redis_client
from deployments.models import App, Deployment


def enqueue(app: App, ref: str, trigger: str, triggered_by: str = "", redeploy_of: Deployment | None = None,
            commit_sha: str = "") -> Deployment:
    """Create a queued deployment and supersede older queued ones; the caller dispatches it.
    commit_sha pins the exact commit (a webhook's pushed commit) instead of the ref's head."""
    reuse = {"redeploy_of": redeploy_of, "commit_sha": redeploy_of.commit_sha, "image": redeploy_of.image,
             "compose_text": redeploy_of.compose_text} if redeploy_of else {}
    if commit_sha:
        reuse["commit_sha"] = commit_sha
    with transaction.atomic():
        deployment = Deployment.objects.create(app=app, ref=ref or app.branch, trigger=trigger,
                                               triggered_by=triggered_by, **reuse)
        lifecycle.supersede_older(deployment)
    return deployment


def next_waiting(app_id: int) -> int | None:
    """The app's queued deployment (the newest; older ones are superseded), if any."""
    return Deployment.objects.filter(app_id=app_id, state=Deployment.State.QUEUED).order_by("id").values_list(
        "id", flat=True).last()


def mark_sent(deployment_id: int) -> None:
    """Note that a task for the deployment is on its way. The note lives in Redis, beside the
    task itself: if Redis loses the task (a restart), it loses the note too."""
    redis_client().set(_sent_key(deployment_id), 1, ex=settings.SWITCHYARD["HEARTBEAT_TIMEOUT"])


def stranded() -> list[int]:
    """Queued deployments that no task will start: one per app with nothing running, whose
    task was never sent, was lost with Redis, or was taken by a worker that died before it
    handed over (the note expires after the heartbeat timeout). Send them again; a copy of
    a task still on its way does no harm (only one claim succeeds)."""
    busy = Deployment.objects.filter(state=Deployment.State.RUNNING).values("app_id")
    newest = {}
    for deployment_id, app_id in (Deployment.objects.filter(state=Deployment.State.QUEUED).exclude(app_id__in=busy)
                                  .order_by("app_id", "-id").values_list("id", "app_id")):
        newest.setdefault(app_id, deployment_id)
    return [deployment_id for deployment_id in newest.values() if not _sent(deployment_id)]


def _sent(deployment_id: int) -> bool:
    try:
        return bool(redis_client().exists(_sent_key(deployment_id)))
    except redis.RedisError:
        return False  # then sending fails too, and the next reconcile tries again


def _sent_key(deployment_id: int) -> str:
    return f"switchyard:{settings.SWITCHYARD['INSTANCE']}:sent:{deployment_id}"

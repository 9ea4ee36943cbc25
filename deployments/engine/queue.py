"""One deployment per app at a time; the newest queued one wins.

Which deployment runs is decided here and in lifecycle.claim; handing it to a worker is
Celery's part (deployments/enqueue.py sends, deployments/tasks.py runs), so the engine never imports a task.
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


def next_to_start(app_id: int) -> list[int]:
    """After a deployment of the app ended: the app's queued deployment, and those of its owner's
    other apps that waited for one of the owner's slots, oldest first, as many as the owner has
    free. Claim decides; a task too many only finds its deployment not claimable."""
    owner_id = App.objects.filter(pk=app_id).values_list("owner_id", flat=True).first()
    apps = App.objects.filter(owner_id=owner_id) if owner_id is not None else App.objects.filter(pk=app_id)
    waiting = sorted(_newest_queued(apps.values("id")).values())
    return waiting[:_free_slots(owner_id)]


def _newest_queued(app_ids) -> dict[int, int]:
    """app id → its queued deployment (the newest; older ones are superseded), for apps among
    `app_ids` that run nothing."""
    busy = Deployment.objects.filter(state=Deployment.State.RUNNING).values("app_id")
    newest = {}
    for deployment_id, app_id in (Deployment.objects.filter(state=Deployment.State.QUEUED, app_id__in=app_ids)
                                  .exclude(app_id__in=busy).order_by("app_id", "-id").values_list("id", "app_id")):
        newest.setdefault(app_id, deployment_id)
    return newest


def _free_slots(owner_id: int | None) -> int:
    limit = settings.SWITCHYARD["MAX_CONCURRENT_DEPLOYS_PER_USER"]
    if owner_id is None or not limit:
        return 1_000_000
    return max(0, limit - Deployment.objects.filter(app__owner_id=owner_id, state=Deployment.State.RUNNING).count())


def mark_sent(deployment_id: int) -> None:
    """Note that a task for the deployment is on its way. The note lives in Redis, beside the
    task itself: if Redis loses the task (a restart), it loses the note too."""
    redis_client().set(_sent_key(deployment_id), 1, ex=settings.SWITCHYARD["HEARTBEAT_TIMEOUT"])


def stranded() -> list[int]:
    """Queued deployments that no task will start: one per app with nothing running, whose
    task was never sent, was lost with Redis, or was taken by a worker that died before it
    handed over (the note expires after the heartbeat timeout). Send them again; a copy of
    a task still on its way does no harm (only one claim succeeds). One whose owner has no slot
    free waits for the owner's running deployment to hand over."""
    newest = _newest_queued(App.objects.values("id"))
    owners = dict(App.objects.filter(id__in=newest).values_list("id", "owner_id"))
    return [deployment_id for app_id, deployment_id in sorted(newest.items(), key=lambda item: item[1])
            if not lifecycle.owner_at_limit(owners[app_id]) and not _sent(deployment_id)]


def _sent(deployment_id: int) -> bool:
    try:
        return bool(redis_client().exists(_sent_key(deployment_id)))
    except redis.RedisError:
        return False  # then sending fails too, and the next reconcile tries again


def _sent_key(deployment_id: int) -> str:
    return f"switchyard:{settings.SWITCHYARD['INSTANCE']}:sent:{deployment_id}"

"""One deployment per app at a time; the newest queued one wins.

Claiming is a conditional UPDATE under a row lock on the app, so two workers that pick
up deployments of the same app at once cannot both run: exactly one UPDATE matches.
"""
from django.db import transaction
from django.utils import timezone

from deployments.models import App, Deployment


def enqueue(app: App, ref: str, trigger: str, triggered_by: str = "", redeploy_of: Deployment | None = None,
            commit_sha: str = "") -> Deployment:
    """Create a queued deployment, supersede older queued ones, dispatch after commit.
    commit_sha pins the exact commit (a webhook's pushed commit) instead of the ref's head."""
    from deployments.tasks import run_deployment

    reuse = {"redeploy_of": redeploy_of, "commit_sha": redeploy_of.commit_sha, "image": redeploy_of.image} if redeploy_of else {}
    if commit_sha:
        reuse["commit_sha"] = commit_sha
    with transaction.atomic():
        deployment = Deployment.objects.create(app=app, ref=ref or app.branch, trigger=trigger,
                                               triggered_by=triggered_by, **reuse)
        (Deployment.objects.filter(app=app, state=Deployment.State.QUEUED, id__lt=deployment.id)
         .update(state=Deployment.State.SUPERSEDED, finished_at=timezone.now(),
                 error=f"superseded by deployment #{deployment.id}"))
        transaction.on_commit(lambda: run_deployment.delay(deployment.id))
    return deployment


def claim(deployment_id: int) -> bool:
    """Move a queued deployment to running if no other deployment of its app runs."""
    with transaction.atomic():
        app_id = Deployment.objects.filter(id=deployment_id).values_list("app_id", flat=True).first()
        if app_id is None:
            return False
        app = App.objects.select_for_update().get(id=app_id)
        if Deployment.objects.filter(app_id=app_id, state=Deployment.State.RUNNING).exists():
            return False  # the running one dispatches us when it ends
        now = timezone.now()
        return bool(Deployment.objects.filter(id=deployment_id, state=Deployment.State.QUEUED).update(
            state=Deployment.State.RUNNING, started_at=now, heartbeat_at=now, previous=app.live_deployment_id,
            health_check=app.current_health_check(),
        ))


def dispatch_next(app_id: int) -> None:
    """Hand the app's waiting deployment (if any) to a worker."""
    from deployments.tasks import run_deployment

    waiting = Deployment.objects.filter(app_id=app_id, state=Deployment.State.QUEUED).order_by("id").last()
    if waiting:
        run_deployment.delay(waiting.id)

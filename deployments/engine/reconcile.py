"""Make the world match the database: deployments whose worker died, stray containers,
HAProxy's config and runtime state, and queued deployments nobody picked up.

Safe to run at any time and any number of times; the worker runs it when it starts.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from deployments.engine import queue, router, runtime
from deployments.engine.logs import append
from deployments.models import App, Deployment

logger = logging.getLogger(__name__)


def reconcile() -> list[str]:
    """Returns a line per thing it changed, for the command's output."""
    actions = _fail_abandoned_deployments()
    actions += _refresh_live_addresses()
    actions += _release_stale_backends()
    actions += _remove_stray_containers()
    actions += _remove_orphan_networks()
    router.sync_all()
    actions.append("HAProxy config, map and servers match the database")
    for app_id in Deployment.objects.filter(state=Deployment.State.QUEUED).values_list("app_id", flat=True).distinct():
        queue.dispatch_next(app_id)
    return actions


def _fail_abandoned_deployments() -> list[str]:
    limit = timezone.now() - timedelta(seconds=settings.SWITCHYARD["HEARTBEAT_TIMEOUT"])
    actions = []
    for deployment in Deployment.objects.filter(state=Deployment.State.RUNNING, heartbeat_at__lt=limit):
        live = App.objects.filter(live_deployment=deployment).exists()
        state = Deployment.State.SUCCEEDED if live else Deployment.State.FAILED
        reason = "" if live else f"{deployment.phase} failed: the worker running it stopped (no heartbeat)"
        Deployment.objects.filter(pk=deployment.pk, state=Deployment.State.RUNNING).update(
            state=state, error=reason, finished_at=timezone.now())
        append(deployment.id, f"reconcile: the worker running this deployment stopped; marked {state}")
        actions.append(f"deployment #{deployment.id} of {deployment.app.name}: worker lost, marked {state}")
    return actions


def _refresh_live_addresses() -> list[str]:
    """After a Docker restart a live container can come back with another address."""
    actions = []
    for app in App.objects.exclude(live_deployment=None).select_related("live_deployment"):
        live = app.live_deployment
        updated = [{**c, "ip": runtime.address(c["id"]) or c["ip"]} for c in live.containers]
        if updated != live.containers:
            Deployment.objects.filter(pk=live.pk).update(containers=updated, holds_backend=True)
            actions.append(f"{app.name}: live container address changed")
    return actions


def _release_stale_backends() -> list[str]:
    """Only live releases and running deployments may hold HAProxy servers."""
    stale = (Deployment.objects.filter(holds_backend=True).exclude(state=Deployment.State.RUNNING)
             .exclude(id__in=App.objects.exclude(live_deployment=None).values("live_deployment")))
    actions = [f"deployment #{d.id}: servers withdrawn" for d in stale]
    stale.update(holds_backend=False)
    return actions


def _remove_stray_containers() -> list[str]:
    owned = {str(i) for i in App.objects.exclude(live_deployment=None).values_list("live_deployment", flat=True)}
    owned |= {str(i) for i in Deployment.objects.filter(state=Deployment.State.RUNNING).values_list("id", flat=True)}
    actions = []
    for container in runtime.containers():
        if container["labels"].get(runtime.LABEL_DEPLOYMENT) not in owned:
            runtime.stop_and_remove(container["id"], timeout=10)
            actions.append(f"removed stray container {container['name']}")
    return actions


def _remove_orphan_networks() -> list[str]:
    """Networks of deleted apps (and the shared network of older versions, once empty)."""
    names = runtime.remove_app_networks(keep=App.objects.values_list("name", flat=True))
    return [f"removed network {name}" for name in names]

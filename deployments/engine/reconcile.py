"""Make the world match the database: deployments whose worker died, live containers that
stopped or moved, stray containers and networks, HAProxy's config and runtime state, and the
egress rules (a rule removed by hand is put back within one interval, not at the next start).

Safe to run at any time and any number of times. Celery beat runs it every
SWITCHYARD_RECONCILE_INTERVAL seconds and the worker when it starts; a run that finds
another one under way skips (they would only repeat each other's work).

A deployment whose worker died (no heartbeat for SWITCHYARD_HEARTBEAT_TIMEOUT seconds):
- before its switch: it never served. Its containers go, it ends `failed`, the release that
  was live keeps serving (in a recreate, its stopped containers are started again);
- after its switch (watch or drain): its release serves and passed every check before the
  switch. It is kept: the previous release is taken out of service and retired as the drain
  would have, and the deployment ends `succeeded`, its log saying the watch was cut short.
  A rollback that had already switched back leaves the old release live: `failed`.
Either way the log says which release serves.
"""
import logging
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from deployments.dockerd.values import Container, ListedContainer
from deployments.engine import egress, lifecycle
from deployments.git import source
from deployments.dockerd import containers, daemon, image_removal, images, networks, pins, release_files, release_networks, volumes
from deployments.engine.locks import reconcile_lock
from deployments.engine.logs import append
from deployments.engine.retire import retire
from deployments.models import App, Deployment
from deployments.traffic import changes

logger = logging.getLogger(__name__)

# A live container is started again only once it has been stopped this long. A daemon that is
# shutting down stops containers while still answering the API; starting one then mounts its
# file system after the daemon's clean-up, and that mount outlives the daemon: the container
# can never be removed (seen here: "failed to remove root filesystem ... device or resource
# busy"). After a restart the daemon starts its own (restart policy) within a second or two.
REVIVE_AFTER = 10.0


BUSY = "another reconcile is under way; nothing done"
# A reconcile takes a second or two; one that holds the lock longer (a drain) is waited for, up
# to this, by the reconcile for a lost worker process. After that, the heartbeat's turn.
LOST_WAITS_FOR_LOCK = 120


def end_lost(deployment_id: int, runner: str) -> int | None:
    """The process that ran task `runner` is gone: if that task runs the deployment, reconcile
    ends it now (as it would once its heartbeat were stale), after a reconcile under way (which
    may have read the rows before the loss), and returns its app's id; None if that task was not
    running it (it found the deployment claimed, or it had ended)."""
    lost = Deployment.objects.filter(id=deployment_id, state=Deployment.State.RUNNING, runner=runner).exclude(
        runner="").values_list("app_id", flat=True).first()
    if lost is None:
        return None
    actions = reconcile(lost=(deployment_id,), wait=LOST_WAITS_FOR_LOCK)
    logger.warning("deployment #%s: its worker process was lost; reconcile: %s", deployment_id, "; ".join(actions[:1]))
    return lost


def reconcile(lost: tuple[int, ...] = (), wait: float = 0) -> list[str]:
    """Returns a line per thing it changed, for the command's output. `lost`: deployments whose
    worker is known to be gone, ended whatever their heartbeat says; `wait`: seconds to wait for
    a reconcile under way to end (else this one does nothing)."""
    with reconcile_lock(wait) as acquired:
        if not acquired:
            return [BUSY]
        actions = _repair_egress()
        actions += _end_abandoned_deployments(lost)
        revived, revived_actions = _revive_live_containers()
        actions += revived_actions
        actions += _record_service_states()
        stale, stale_actions = _stale_backends()
        actions += stale_actions
        actions += _remove_stray_containers()
        actions += _remove_orphan_networks()
        actions += _remove_orphan_volumes()
        actions += _remove_unused_files_volumes()
        actions += _let_go_of_deleted_apps_images()
        actions += _remove_set_aside_layers()
        changes.sync_all(hold=revived, release=stale)
        actions.append("HAProxy config, map and servers match the database")
        return actions


def _repair_egress() -> list[str]:
    """The egress rules as a worker's start puts them: what was missing is logged and put back.
    A failure is logged and reported, and the rest of reconcile still runs."""
    try:
        repaired = egress.ensure()
    except egress.EgressError as error:
        logger.error("reconcile: egress rules not in place: %s", error)
        return [f"egress rules not in place: {error}"]
    if not repaired:
        return []
    logger.warning("reconcile: egress rules repaired: %s", "; ".join(repaired))
    return [f"egress rules repaired: {'; '.join(repaired)}"]


def _end_abandoned_deployments(lost: tuple[int, ...]) -> list[str]:
    limit = timezone.now() - timedelta(seconds=settings.SWITCHYARD["HEARTBEAT_TIMEOUT"])
    actions = []
    for deployment in Deployment.objects.filter(Q(heartbeat_at__lt=limit) | Q(id__in=lost),
                                                state=Deployment.State.RUNNING).select_related("app", "previous"):
        actions.append(_end_abandoned(deployment))
    return actions


def _end_abandoned(deployment: Deployment) -> str:
    kept_live = deployment.app.live_deployment_id == deployment.id
    if kept_live:
        _retire_previous(deployment)
        note = (f"the worker stopped during {deployment.phase}; this release serves and passed its checks, "
                f"so it is kept and the previous release was retired")
    else:
        serving = f"deployment #{deployment.app.live_deployment_id}" if deployment.app.live_deployment_id else "nothing"
        note = f"the worker stopped during {deployment.phase}; it never went live, {serving} serves"
    reason = f"{deployment.phase or 'start-up'} failed: {note}"
    state = lifecycle.abandon(deployment, reason, kept_live)
    if state is None:
        return f"deployment #{deployment.id} ended meanwhile"
    append(deployment.id, f"reconcile: {note}; marked {state}")
    return f"deployment #{deployment.id} of {deployment.app.name}: worker lost during {deployment.phase}, {state}"


def _retire_previous(deployment: Deployment) -> None:
    """What the watch's end and the drain would have done: the previous release leaves the new
    backend's backups and its own, requests in flight finish (up to the drain timeout), then
    its containers stop."""
    if deployment.serves_backup:
        changes.withdraw_backups(deployment)
    if deployment.previous is not None:
        retire(deployment.previous, stop_timeout=deployment.app.stop_timeout,
               say=lambda text: logger.info("reconcile: deployment #%s: %s", deployment.id, text))


def _revive_live_containers() -> tuple[tuple[Deployment, ...], list[str]]:
    """A live release must run: start a stopped container again (a recreate whose worker died
    after stopping it, a daemon restart that did not restart it) and take up a changed address
    (Docker may give a restarted container another one). Returns the live releases whose
    containers changed (they hold their backend again: sync_all at the end routes to them)."""
    actions, revived = [], []
    deploying = _apps_deploying()
    listed = _listed_containers()
    for app in App.objects.exclude(live_deployment=None).select_related("live_deployment"):
        live = app.live_deployment
        updated = [_running_again(container, listed) for container in live.containers]
        if updated != live.containers:
            lifecycle.record_containers(live, updated)
            revived.append(live)
            actions.append(f"{app.name}: live containers running again at {', '.join(c.ip for c in updated)}")
        if app.id not in deploying:  # a running deployment records its services itself
            actions += _revive_services(app, live, listed)
    return tuple(revived), actions


def _listed_containers() -> dict[str, ListedContainer]:
    """Every container of this installation in one list call: reconcile looks at each live one on
    every run, and an inspect each made a run grow with the number of apps (431 ms at 100)."""
    return {container.id: container for container in containers.listed()}


def _apps_deploying() -> set[int]:
    return set(Deployment.objects.filter(state=Deployment.State.RUNNING).values_list("app_id", flat=True))


def _revive_services(app: App, live: Deployment, listed: dict[str, ListedContainer]) -> list[str]:
    """A Compose release's other services must run too: a stateful one that a dead worker had
    stopped (and maybe renamed aside) to replace it is started again under its name."""
    services = [replace(service, containers=tuple(_running_again(c, listed) for c in service.containers))
                for service in live.services]
    if services == live.services:
        return []
    lifecycle.record_services(live, services)
    return [f"{app.name}: services {', '.join(s.name for s in services)} running"]


def _record_service_states() -> list[str]:
    """What the panel shows of a Compose app's other services: whether their containers run.
    Docker restarts them by their restart policy; this only records what it sees."""
    actions = []
    apps = App.objects.exclude(live_deployment=None).exclude(compose_file="").exclude(id__in=_apps_deploying())
    listed = _listed_containers()
    for app in apps.select_related("live_deployment"):
        live = app.live_deployment
        seen = [replace(service, state=_service_state(service, listed)) for service in live.services]
        if seen != live.services:
            lifecycle.record_services(live, seen)
            actions.append(f"{app.name}: " + ", ".join(f"{s.name} {s.state}" for s in seen))
    return actions


def _service_state(service, listed: dict[str, ListedContainer]) -> str:
    total = len(service.containers)
    down = [containers.state(c.id) for c in service.containers if not _listed_running(c, listed)]
    down = [state for state in down if not state.running]  # it may have started since the list
    if not down:
        return "running"
    worst = down[0]
    how = "removed" if worst.status == "removed" else f"{worst.status} (exit code {worst.exit_code})"
    return f"{total - len(down)} of {total} running; {how}"


def _listed_running(container: Container, listed: dict[str, ListedContainer]) -> bool:
    seen = listed.get(container.id)
    return seen is not None and seen.state == "running"


def _running_again(container: Container, listed: dict[str, ListedContainer]) -> Container:
    if _listed_running(container, listed):
        return container.at(listed[container.id].ip or container.ip)
    state = containers.state(container.id)  # only a container that is not running needs a closer look
    if state.status == "removed":
        return container  # nothing to start; the app's next deploy replaces it
    if not state.running and state.stopped_seconds < REVIVE_AFTER:
        return container  # the daemon may be stopping or restarting it itself: not now
    if not state.running:
        try:
            return containers.bring_back(container)
        except daemon.RuntimeFailure as error:  # its name is still taken (the next run, after strays go)
            logger.warning("reconcile: %s", error)
            return container
    return container.at(containers.address(container.id) or container.ip)  # started since the list


def _stale_backends() -> tuple[tuple[Deployment, ...], list[str]]:
    """Only live releases, running deployments and the releases those replace may hold servers:
    the others, for sync_all to withdraw."""
    stale = tuple(Deployment.objects.filter(holds_backend=True).exclude(id__in=_owned_ids()))
    return stale, [f"deployment #{deployment.id}: servers withdrawn" for deployment in stale]


def _owned_ids() -> set[int]:
    """Deployments whose containers must stay: each app's live release, every running
    deployment, and the release a running deployment replaces (it serves until the switch,
    and it is what a rollback during the watch goes back to)."""
    owned = set(App.objects.exclude(live_deployment=None).values_list("live_deployment", flat=True))
    for deployment_id, previous_id in Deployment.objects.filter(state=Deployment.State.RUNNING).values_list(
            "id", "previous_id"):
        owned |= {deployment_id, previous_id} - {None}
    return owned


def _remove_stray_containers() -> list[str]:
    owned_ids = _owned_ids()
    owned = {str(i) for i in owned_ids}
    carried = _carried_over(owned_ids)
    actions = []
    for container in containers.listed():
        if container.deployment not in owned and container.id not in carried:
            containers.stop_and_remove(container.id, timeout=10)
            actions.append(f"removed stray container {container.name}")
    return actions


def _carried_over(owned_ids: set[int]) -> set[str]:
    """Containers of a Compose app's services that stay although the deployment that started them
    is not owned: stateful ones an owned release carried over, and the previous release's services
    that a live release never replaced (its worker died after the switch, before the drain started
    the new workers: the old ones are all the app has until its next deploy)."""
    live = set(App.objects.exclude(live_deployment=None).values_list("live_deployment", flat=True))
    kept = set()
    for deployment in Deployment.objects.filter(id__in=owned_ids).select_related("previous"):
        kept |= {container.id for service in deployment.services for container in service.containers}
        if deployment.id in live and deployment.previous and deployment.compose_text:
            names = {service.name for service in deployment.services}
            kept |= {container.id for service in deployment.previous.services if service.name not in names
                     for container in service.containers}
    return kept


def _remove_orphan_networks() -> list[str]:
    """Networks of deleted apps (and the shared network of older versions, once empty)."""
    names = release_networks.remove_unowned(_owned_ids())  # the networks of retired releases' chains
    names += networks.remove_app_networks(keep=App.objects.values_list("name", flat=True))
    return [f"removed network {name}" for name in names]


def _remove_orphan_volumes() -> list[str]:
    """Volumes of deleted apps (by id: an app of the same name made since has its own)."""
    names = volumes.remove_orphan_volumes(keep=App.objects.values_list("id", flat=True))
    return [f"removed volume {name}" for name in names]


def _remove_unused_files_volumes() -> list[str]:
    """Files volumes whose release is gone (a worker lost between filling one and retiring it)."""
    running = Deployment.objects.exclude(state__in=Deployment.FINAL_STATES).values_list("id", flat=True)
    return [f"removed files volume {name}" for name in release_files.remove_unused(keep=running)]


def _let_go_of_deleted_apps_images() -> list[str]:
    """Pulled images a deleted app still holds (its removal task never ran). Holds are listed
    before the apps: an app created in between is among them."""
    deleted = pins.held_app_ids() - set(App.objects.values_list("id", flat=True))
    return [f"let go of the pulled image {digest[:19]} of deleted app #{app_id}"
            for app_id in sorted(deleted) for digest in pins.let_go_all(app_id)]


def _remove_set_aside_layers() -> list[str]:
    """Layers a removal set aside while a build ran (dockerd/image_removal.py), if none runs now."""
    return ["removed the image layers set aside while builds ran"] if (
        image_removal.set_aside() and image_removal.remove_set_aside()) else []


def remove_deleted_app(name: str, deployment_ids: list[int], stop_timeout: int, image_repository: str,
                       app_id: int | None = None) -> None:
    """Right after an app was deleted: its deployments' containers, and, unless an app of the
    same name exists again by now, its network, images and clone cache. By deployment, not by
    name, so a late run never touches the new app's containers (anything it misses is a stray
    container or an orphan network for the periodic run)."""
    deleted = {str(i) for i in deployment_ids}
    for container in containers.listed(app_name=name):
        if container.deployment in deleted:
            containers.stop_and_remove(container.id, timeout=stop_timeout)
    if app_id is not None:
        volumes.remove_app_volumes(app_id)
        pins.let_go_all(app_id)  # its pulled images, removed unless another app holds them
    if App.objects.filter(name=name).exists():
        return
    networks.remove_app_network(name)  # if a container is still attached, the periodic run removes it
    image_removal.remove_images(images.app_images(image_repository))
    source.delete_cache(name)

"""A deployment's life: its states, the moves between them, and the only code that writes them.

    queued ──claim──▶ running: fetch → build → start → verify ─take_over─▶ [canary] → switch → watch → drain
      │                 │
      ├─ cancel ──────▶ cancelled          ├─ finish ──▶ succeeded | failed | rolled_back | cancelled
      ├─ supersede ───▶ superseded         └─ abandon ─▶ succeeded | failed | cancelled
      └─ abandon ─────▶ cancelled             (its worker died, or its app was deleted)

Each move is one conditional UPDATE that names the state (and, where it matters, the phase)
it starts from and sets every field the new state needs: 0 rows means someone else moved
first, and the caller learns it from the return value. What people ask of a running
deployment (cancel, promote, abort) are flags here too; the pipeline reads them between steps.
Like kamal-proxy's TargetState, all of it goes through one function, _move.
"""
import enum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import quotas
from deployments.outgoing import events
from deployments.models import App, Deployment

State = Deployment.State
ALLOWED = {
    State.QUEUED: {State.RUNNING, State.CANCELLED, State.SUPERSEDED},
    State.RUNNING: {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.CANCELLED},
}


class IllegalTransition(Exception):
    """A move the state machine does not have (a bug in the caller, never user input)."""


def _move(matching: dict, to: str, **fields) -> int:
    """Move the deployments that match `matching` (which names their current state) to `to`,
    setting `fields`; a final state also gets finished_at. Returns how many moved."""
    source = matching["state"]
    if to not in ALLOWED.get(source, ()):
        raise IllegalTransition(f"{source} → {to}")
    if to in Deployment.FINAL_STATES:
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("canary_percent", 0)  # no share of the traffic outlives its deployment
    return Deployment.objects.filter(**matching).update(state=to, **fields)


# From queued ----------------------------------------------------------------------------------

def claim(deployment_id: int, runner: str = "") -> bool:
    """queued → running, if no other deployment of its app runs and its owner has a slot free
    (SWITCHYARD_MAX_CONCURRENT_DEPLOYS_PER_USER). Under row locks on the app and its owner, so
    two workers that pick up deployments of one app, or of one owner, at once cannot both start.
    It records what was live (the release to go back to), the health check to verify with, the
    task that runs it (`runner`), and, if it fits in its owner's totals, what it reserves there
    (reserve_release). A deployment not claimed stays queued: the one that ends first hands over
    (queue.next_to_start)."""
    with transaction.atomic():
        app_id = Deployment.objects.filter(id=deployment_id).values_list("app_id", flat=True).first()
        if app_id is None:
            return False
        app = App.objects.select_for_update().get(id=app_id)
        if Deployment.objects.filter(app_id=app_id, state=State.RUNNING).exists():
            return False  # the running one hands over to the next when it ends
        quotas.lock_owner(app.owner_id)
        if owner_at_limit(app.owner_id):
            return False
        now = timezone.now()
        claimed = bool(_move({"id": deployment_id, "state": State.QUEUED}, State.RUNNING, phase="", started_at=now,
                             heartbeat_at=now, previous=app.live_deployment_id, health_check=app.current_health_check(),
                             runner=runner, **_reservation(app, quotas.containers_of(app))))
        if claimed:
            events.record_start(deployment_id)
        return claimed


def _reservation(app: App, containers: int) -> dict:
    """The fields that count a release of `containers` containers in its owner's totals, if it fits
    there (the caller holds the owner's lock); none if not: the deployment is then not counted, and
    its check at fetch (reserve_release) fails it with the reason."""
    return {} if quotas.release_problem(app, containers) else _footprint(app, containers)


def _footprint(app: App, containers: int) -> dict:
    return {"memory_limit_mb": app.memory_limit_mb, "container_count": containers}


def reserve_release(deployment: Deployment, containers: int) -> str:
    """Once the release's containers are known (its compose file read): the ceilings and the
    owner's totals checked again under the owner's lock, and what it starts with recorded, so a
    deployment of another of the owner's apps counts it. Returns why it may not start, or ""."""
    app = deployment.app
    with transaction.atomic():
        quotas.lock_owner(app.owner_id)
        if problem := quotas.release_problem(app, containers):
            return problem
        fields = _footprint(app, containers)
        Deployment.objects.filter(pk=deployment.pk).update(**fields)
    for name, value in fields.items():
        setattr(deployment, name, value)
    return ""


def owner_at_limit(owner_id: int | None) -> bool:
    """Whether the owner's apps already run as many deployments as one user may at once, so that
    one user cannot take every worker slot. Apps without an owner (made by an administrator from
    the CLI) are not limited."""
    limit = settings.SWITCHYARD["MAX_CONCURRENT_DEPLOYS_PER_USER"]
    if owner_id is None or not limit:
        return False
    return Deployment.objects.filter(app__owner_id=owner_id, state=State.RUNNING).count() >= limit


def supersede_older(deployment: Deployment) -> int:
    """Older queued deployments of the app → superseded: only the newest waits."""
    return _move({"app_id": deployment.app_id, "state": State.QUEUED, "id__lt": deployment.id}, State.SUPERSEDED,
                 error=f"superseded by deployment #{deployment.id}")


# Running --------------------------------------------------------------------------------------

def enter_phase(deployment_id: int, phase: str, phase_times: dict) -> bool:
    """The next phase, unless a cancel (or a canary's abort) was asked for first (then False).
    Cancelling and aborting are conditional UPDATEs on the phase, so of the two whichever comes
    first wins, never both. phase_times carries the previous phase's end too: one write."""
    return bool(Deployment.objects.filter(id=deployment_id, state=State.RUNNING, cancel_requested=False,
                                          abort_requested=False).update(phase=phase, phase_times=phase_times))


def take_over(deployment_id: int, handed_by: str, runner: str) -> bool:
    """The task `runner` carries on the deployment that task `handed_by` ran up to verify: from
    now on a loss of `runner`'s process ends it. False if it ended meanwhile (reconcile found its
    heartbeat stale while it waited for a watch slot) or another copy of the task took it."""
    return bool(Deployment.objects.filter(id=deployment_id, state=State.RUNNING, runner=handed_by).exclude(
        runner="").update(runner=runner, heartbeat_at=timezone.now()))


def finish(deployment_id: int, state: str, error: str, **fields) -> bool:
    """running → a final state, with the reason (empty when it succeeded) and what the
    pipeline measured (phase_times, traffic)."""
    with transaction.atomic():
        return _ended(deployment_id, _move({"id": deployment_id, "state": State.RUNNING}, state, error=error, **fields))


def _ended(deployment_id: int, moved: int) -> bool:
    """After a move of one deployment to a final state: its deploy events, in the same
    transaction as the move (the caller's, or one here)."""
    if moved:
        events.record_end(deployment_id)
    return bool(moved)


def abandon(deployment: Deployment, reason: str, kept_live: bool) -> str | None:
    """Its worker is gone: running → succeeded when its release is what serves (it got past
    the switch and reconcile finished its work), else failed. Returns the state, or None if
    it had ended meanwhile."""
    state = State.SUCCEEDED if kept_live else State.FAILED
    with transaction.atomic():
        moved = _ended(deployment.id, _move({"id": deployment.id, "state": State.RUNNING}, state,
                                            error="" if kept_live else reason))
    return state if moved else None


def cancel_all_of_app(app_id: int, reason: str) -> int:
    """The app is being deleted: whatever waits or runs ends cancelled."""
    return sum(_move({"app_id": app_id, "state": source}, State.CANCELLED, error=reason)
               for source in (State.QUEUED, State.RUNNING))


# What serves: the rows the routing table is derived from ---------------------------------------
# record_routing and go_live are called by traffic/changes.py alone, under its lock, as the first
# step of a routing change (reconcile's repairs too, through changes.sync_all). canary_percent is
# written by record_canary, called with a percent by changes.set_canary_share alone, and set to 0
# by _move when a deployment ends. record_containers and record_services are the deployment's
# owner's (pipeline, reconcile): new addresses reach HAProxy with the routing change that follows.

ROUTING_FLAGS = ("holds_backend", "serves_backup")


def record_routing(deployment: Deployment, **flags: bool) -> None:
    """holds_backend: HAProxy has (or should have) its containers as servers of its colour;
    serves_backup: the previous release's containers are backups in its backend. The object
    passed in is updated too, so its owner never needs to read its row again."""
    if not flags or set(flags) - set(ROUTING_FLAGS):
        raise ValueError(f"routing flags are {ROUTING_FLAGS}, not {sorted(flags)}")
    Deployment.objects.filter(pk=deployment.pk).update(**flags)
    for name, value in flags.items():
        setattr(deployment, name, value)


def record_containers(deployment: Deployment, containers: list) -> None:
    """Its containers now are these (started again, or at a new address)."""
    Deployment.objects.filter(pk=deployment.pk).update(containers=containers)
    deployment.containers = containers


def record_compose_summary(deployment: Deployment, summary: dict) -> None:
    """What the panel shows of the release's compose file (Deployment.compose_summary)."""
    Deployment.objects.filter(pk=deployment.pk).update(compose_summary=summary)
    deployment.compose_summary = summary


def record_services(deployment: Deployment, services: list) -> None:
    """A Compose release's other services now are these (their containers or state changed)."""
    Deployment.objects.filter(pk=deployment.pk).update(services=services)
    deployment.services = services


def go_live(deployment: Deployment):
    """Store the deployment as its app's live release (the app object too); returns a
    function that puts back what served before."""
    app = deployment.app
    before = (app.live_colour, app.live_deployment_id)
    _set_live(app, deployment.colour, deployment.pk)

    def undo() -> None:
        _set_live(app, *before)
    return undo


def _set_live(app: App, colour: str, deployment_id: int | None) -> None:
    App.objects.filter(pk=app.pk).update(live_colour=colour, live_deployment_id=deployment_id)
    app.live_colour, app.live_deployment_id = colour, deployment_id


# What people ask for ----------------------------------------------------------------------------

class CancelOutcome(enum.Enum):
    CANCELLED = "cancelled"  # it was queued and ended at once
    REQUESTED = "requested"  # the pipeline stops at its next step
    TOO_LATE = "too late"    # traffic has moved: roll back by redeploying instead
    ENDED = "ended"          # it had already ended


def request_cancel(deployment_id: int, by: str) -> CancelOutcome:
    with transaction.atomic():
        cancelled = _ended(deployment_id, _move({"id": deployment_id, "state": State.QUEUED}, State.CANCELLED,
                                                cancelled_by=by, error=f"cancelled by {by} while queued"))
    if cancelled:
        return CancelOutcome.CANCELLED
    if Deployment.objects.filter(id=deployment_id, state=State.RUNNING,
                                 phase__in=Deployment.CANCELLABLE_PHASES).update(cancel_requested=True, cancelled_by=by):
        return CancelOutcome.REQUESTED
    running = Deployment.objects.filter(id=deployment_id, state=State.RUNNING).exists()
    return CancelOutcome.TOO_LATE if running else CancelOutcome.ENDED


def request_promote(deployment_id: int, by: str) -> bool:
    """End the watch early, or skip a canary's remaining steps: only in those phases."""
    return bool(Deployment.objects.filter(id=deployment_id, state=State.RUNNING, phase__in=("canary", "watch")).update(
        promote_requested=True, promoted_by=by))


def consume_promote(deployment_id: int) -> None:
    """A promote that ended a canary does not also end the watch that follows the switch."""
    Deployment.objects.filter(id=deployment_id).update(promote_requested=False)


def request_abort(deployment_id: int, by: str) -> bool:
    """Send a canary's traffic back to the old release at once; only during the canary."""
    return bool(Deployment.objects.filter(id=deployment_id, state=State.RUNNING, phase="canary").update(
        abort_requested=True, aborted_by=by))


def aborted_by(deployment_id: int) -> str | None:
    """Who aborted it ('' if unknown), or None if nobody has."""
    return Deployment.objects.filter(id=deployment_id, abort_requested=True).values_list(
        "aborted_by", flat=True).first()


class NotRunning(Exception):
    """The deployment ended meanwhile (reconcile took it for dead): its canary must not go on."""


def record_canary(deployment: Deployment, percent: int | None = None, canary: dict | None = None) -> None:
    """The canary's share of the live backend and/or its steps so far. A share above 0 only
    while the deployment runs: one that reconcile ended must not take traffic again."""
    fields = {}
    if percent is not None:
        deployment.canary_percent = fields["canary_percent"] = percent
    if canary is not None:
        deployment.canary = fields["canary"] = canary
    rows = Deployment.objects.filter(pk=deployment.pk)
    if percent:
        rows = rows.filter(state=State.RUNNING)
    if not rows.update(**fields) and percent:
        deployment.canary_percent = 0
        raise NotRunning(f"deployment #{deployment.pk} is no longer running")


def cancel_requested(deployment_id: int) -> bool:
    return Deployment.objects.filter(id=deployment_id, cancel_requested=True).exists()


def promoted_by(deployment_id: int) -> str | None:
    """Who promoted it ('' if unknown), or None if nobody has."""
    return Deployment.objects.filter(id=deployment_id, promote_requested=True).values_list(
        "promoted_by", flat=True).first()

"""Ceilings on what an app and its owner may use, set by the administrator, not by the tenant.

Settings give every user the same ceilings (SWITCHYARD_MAX_APP_* per app, SWITCHYARD_USER_MAX_*
for all of a user's apps together); a superuser grants one user more with a Quota row (Django
admin). They are checked where a value is written (create and settings, through the application layer: panel,
API and CLI alike), and again when a deployment starts, where a Compose app's real number of
containers is known and a ceiling the administrator lowered since applies.

A value at or below its ceiling is always accepted; one above it only if it did not change
(so a tenant whose ceiling was lowered can still edit their other settings; the next deploy
tells them what to lower).

In the per-user totals each app counts for the most of: its settings, its live release, and a
deployment of it that runs, each as memory limit × containers. A release is counted with what it
was started with (Deployment.memory_limit_mb and container_count): lowering a setting without
redeploying frees nothing. Totals are checked again under a lock on the owner (lock_owner, in the
transaction that then writes), so two creates, settings changes or deploys at once cannot each
count without the other.
"""
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from deployments.models import App, Deployment, Quota


@dataclass(frozen=True)
class Ceilings:
    app_memory_mb: int
    app_cpus: float
    app_pids: int
    app_containers: int
    app_watch_seconds: int
    app_canary_seconds: int
    apps: int | None  # None: no owner, so no per-user totals
    memory_mb: int | None
    containers: int | None

    @classmethod
    def of(cls, user) -> "Ceilings":
        config = settings.SWITCHYARD
        quota = Quota.objects.filter(user=user).first() if user is not None else None

        def chosen(field: str, setting: str):
            granted = getattr(quota, field) if quota is not None else None
            return config[setting] if granted is None else granted

        per_user = user is not None
        return cls(app_memory_mb=chosen("app_memory_mb", "MAX_APP_MEMORY_MB"),
                   app_cpus=chosen("app_cpus", "MAX_APP_CPUS"), app_pids=chosen("app_pids", "MAX_APP_PIDS"),
                   app_containers=chosen("app_containers", "MAX_APP_CONTAINERS"),
                   app_watch_seconds=chosen("app_watch_seconds", "MAX_APP_WATCH_SECONDS"),
                   app_canary_seconds=chosen("app_canary_seconds", "MAX_APP_CANARY_SECONDS"),
                   apps=chosen("apps", "USER_MAX_APPS") if per_user else None,
                   memory_mb=chosen("memory_mb", "USER_MAX_MEMORY_MB") if per_user else None,
                   containers=chosen("containers", "USER_MAX_CONTAINERS") if per_user else None)


GRANT = "a superuser can grant more (Django admin, Quotas)"


def lock_owner(owner_id: int | None) -> None:
    """Hold the owner's row until the transaction ends (PostgreSQL: SELECT ... FOR UPDATE; SQLite's
    IMMEDIATE transactions hold the write lock anyway): totals checked after this, and written in
    the same transaction, are one user's at a time."""
    if owner_id is not None:
        list(get_user_model().objects.select_for_update().filter(pk=owner_id).values_list("pk", flat=True))


@dataclass(frozen=True)
class Footprint:
    """What one app counts for in its owner's totals."""
    memory_mb: int  # memory limit × containers
    containers: int

    @classmethod
    def of(cls, memory_limit_mb: int, containers: int) -> "Footprint":
        return cls(memory_limit_mb * containers, containers)

    @classmethod
    def of_release(cls, deployment: Deployment | None) -> "Footprint":
        """What a release was started with (nothing for one not counted yet)."""
        if deployment is None or deployment.container_count is None or deployment.memory_limit_mb is None:
            return cls(0, 0)
        return cls.of(deployment.memory_limit_mb, deployment.container_count)

    def __or__(self, other: "Footprint") -> "Footprint":
        return Footprint(max(self.memory_mb, other.memory_mb), max(self.containers, other.containers))


def containers_of(app: App) -> int:
    """How many containers the app runs: its live release's, else its replicas (a Compose app's
    real number is known once its file is read, at deploy)."""
    live = app.live_deployment
    if live is not None and live.container_count:
        return live.container_count
    if live is not None and live.containers:
        return len(live.containers) + sum(len(service.containers) for service in live.services)
    return app.replicas


def new_app_errors(owner) -> dict[str, list[str]]:
    """May `owner` have one app more?"""
    ceilings = Ceilings.of(owner)
    if ceilings.apps is not None and App.objects.filter(owner=owner).count() >= ceilings.apps:
        return {"name": [f"{owner.get_username()} owns {ceilings.apps} apps already, the most allowed "
                         f"(SWITCHYARD_USER_MAX_APPS); delete one, or {GRANT}"]}
    return {}


def settings_errors(app: App, before: dict | None = None) -> dict[str, list[str]]:
    """The app's limits (as set on `app`, not saved yet) against its owner's ceilings; `before`:
    the stored values, None for a new app."""
    ceilings = Ceilings.of(app.owner)
    errors: dict[str, list[str]] = {}

    def over(field: str, value, ceiling, setting: str, unit: str) -> None:
        raised = before is None or value != before.get(field)
        if value > ceiling and raised:
            errors.setdefault(field, []).append(f"{value:g}{unit} is above the most allowed, {ceiling:g}{unit} "
                                                f"({setting}); {GRANT}")

    over("memory_limit_mb", app.memory_limit_mb, ceilings.app_memory_mb, "SWITCHYARD_MAX_APP_MEMORY_MB", " MiB")
    over("cpu_limit", app.cpu_limit, ceilings.app_cpus, "SWITCHYARD_MAX_APP_CPUS", " CPUs")
    over("pids_limit", app.pids_limit, ceilings.app_pids, "SWITCHYARD_MAX_APP_PIDS", " processes")
    over("replicas", app.replicas, ceilings.app_containers, "SWITCHYARD_MAX_APP_CONTAINERS", " containers")
    over("watch_window", app.watch_window, ceilings.app_watch_seconds, "SWITCHYARD_MAX_APP_WATCH_SECONDS", " s")
    if (problem := _canary_problem(app, ceilings)) and _canary_changed(app, before):
        errors.setdefault("canary_step_seconds", []).append(problem)
    if errors or app.owner is None:
        return errors
    if _raised_totals(app, before):
        own = Footprint.of(app.memory_limit_mb, containers_of(app)) | _running_or_live(app)
        field, problem = _total_problem(ceilings, *_usage(app, own))
        if problem:
            errors[field] = [problem]
    return errors


def canary_seconds(steps: list[int] | None, step_seconds: int) -> int:
    """How long a canary runs: each step below 100 % is held step_seconds (100 % is the switch)."""
    return sum(1 for percent in steps or [] if percent < 100) * step_seconds


def _canary_changed(app: App, before: dict | None) -> bool:
    return before is None or (canary_seconds(app.canary_steps, app.canary_step_seconds)
                              != canary_seconds(before["canary_steps"], before["canary_step_seconds"]))


def _canary_problem(app: App, ceilings: Ceilings) -> str:
    length = canary_seconds(app.canary_steps, app.canary_step_seconds)
    if length <= ceilings.app_canary_seconds:
        return ""
    return (f"the canary would run {length} s ({length // app.canary_step_seconds} steps below 100 % × "
            f"{app.canary_step_seconds} s), above the most allowed, {ceilings.app_canary_seconds} s "
            f"(SWITCHYARD_MAX_APP_CANARY_SECONDS); use fewer or shorter steps, or {GRANT}")


def release_problem(app: App, containers: int) -> str:
    """Why a release of `containers` containers with the app's limits may not start, or ""."""
    ceilings = Ceilings.of(app.owner)
    if app.watch_window > ceilings.app_watch_seconds:
        return (f"the app's watch window is {app.watch_window} s, above the most allowed, {ceilings.app_watch_seconds} s "
                f"(SWITCHYARD_MAX_APP_WATCH_SECONDS); lower it in the app's settings or {GRANT}")
    if problem := _canary_problem(app, ceilings):
        return problem
    checks = ((app.memory_limit_mb, ceilings.app_memory_mb, "memory", " MiB", "SWITCHYARD_MAX_APP_MEMORY_MB"),
              (app.cpu_limit, ceilings.app_cpus, "CPUs", "", "SWITCHYARD_MAX_APP_CPUS"),
              (app.pids_limit, ceilings.app_pids, "processes", "", "SWITCHYARD_MAX_APP_PIDS"),
              (containers, ceilings.app_containers, "containers", "", "SWITCHYARD_MAX_APP_CONTAINERS"))
    for value, ceiling, what, unit, setting in checks:
        if value > ceiling:
            return (f"the app asks for {value:g}{unit} {what} (per container)" if what != "containers" else
                    f"the release has {value} containers") + \
                f", above the most allowed, {ceiling:g}{unit} ({setting}); lower it in the app's settings or {GRANT}"
    if app.owner is None:
        return ""
    return _total_problem(ceilings, *_usage(app, Footprint.of(app.memory_limit_mb, containers)))[1]


def _running_or_live(app: App) -> Footprint:
    """What the app's live release and a deployment of it that runs were started with."""
    if app.pk is None:
        return Footprint(0, 0)
    running = Deployment.objects.filter(app_id=app.pk, state=Deployment.State.RUNNING).exclude(container_count=None)
    return Footprint.of_release(app.live_deployment if app.live_deployment_id else None) | Footprint.of_release(
        running.first())


def _usage(app: App, own: Footprint) -> tuple[int, int, str]:
    """(memory MiB, containers) of all the owner's apps with `app` counting `own`, and the
    owner's name. Every other app counts for the most of its settings, its live release and its
    running deployment."""
    others = App.objects.filter(owner=app.owner).exclude(pk=app.pk).select_related("live_deployment")
    running = {deployment.app_id: deployment for deployment in Deployment.objects.filter(
        app__owner=app.owner, state=Deployment.State.RUNNING).exclude(app_id=app.pk).exclude(container_count=None)}
    footprints = [own] + [Footprint.of(other.memory_limit_mb, containers_of(other))
                          | Footprint.of_release(other.live_deployment)
                          | Footprint.of_release(running.get(other.pk)) for other in others]
    return (sum(f.memory_mb for f in footprints), sum(f.containers for f in footprints),
            app.owner.get_username())


def _total_problem(ceilings: Ceilings, memory: int, containers: int, owner: str) -> tuple[str, str]:
    """(the setting's field, why) if the owner's apps together pass a ceiling, else ("", "")."""
    if memory > ceilings.memory_mb:
        return "memory_limit_mb", (
            f"{owner}'s apps would use {memory} MiB of memory in all (memory limit × containers; a running "
            f"release counts with the limit it was started with until it is redeployed), above the most allowed, "
            f"{ceilings.memory_mb} MiB (SWITCHYARD_USER_MAX_MEMORY_MB); lower a limit and redeploy, or {GRANT}")
    if containers > ceilings.containers:
        return "replicas", (
            f"{owner}'s apps would run {containers} containers in all, above the most allowed, "
            f"{ceilings.containers} (SWITCHYARD_USER_MAX_CONTAINERS); lower the replicas, or {GRANT}")
    return "", ""


def _raised_totals(app: App, before: dict | None) -> bool:
    return before is None or app.memory_limit_mb > before["memory_limit_mb"] or app.replicas > before["replicas"]

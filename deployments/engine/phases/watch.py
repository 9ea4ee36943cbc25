"""The watch: for the app's watch window after the switch (or until someone promotes), HAProxy's
health of the new servers, the 5xx ratio of their answers, and their containers; any trouble
rolls back (rollback.py). The old release stays ready meanwhile, as backup servers."""
import datetime
import time
from dataclasses import dataclass

from django.utils import timezone

from deployments.dockerd import containers
from deployments.engine import lifecycle
from deployments.engine.phases.context import DeploymentContext
from deployments.engine.phases.rollback import roll_back
from deployments.haproxy import stats
from deployments.traffic import changes, readings

WATCH_INTERVAL = 0.1  # how often the watch looks; detection to rollback stays well under a second


@dataclass(frozen=True)
class HealthBaseline:
    """What broken() compares with, read as the watch or the canary begins: each new container's
    restarts, and each new server's DOWN transitions (HAProxy's chkdown). A count, not a look:
    a server down for less than one look of the watch (a DOWN server is checked again within
    100 ms: downinter) is seen all the same."""
    restarts: dict[str, int]
    downs: dict[str, int]


@dataclass(frozen=True)
class Baseline:
    """Where the watch window begins: what the new servers had answered, and their health, then.
    Read as the switch ends when a watch worker carries on (stored with the hand-off, so the
    window and what it compares with both start at the switch, the hand-off inside it)."""
    answers: stats.Responses
    health: HealthBaseline
    at: datetime.datetime

    def stored(self) -> dict:
        return {"answers": [self.answers.total, self.answers.errors], "restarts": self.health.restarts,
                "downs": self.health.downs, "at": self.at.isoformat()}

    @classmethod
    def from_stored(cls, stored: dict) -> "Baseline":
        return cls(stats.Responses(*stored["answers"]), HealthBaseline(stored["restarts"], stored["downs"]),
                   datetime.datetime.fromisoformat(stored["at"]))


def read_baseline(ctx: DeploymentContext) -> Baseline:
    return Baseline(_answered(ctx), health_baseline(ctx), timezone.now())


def _stored_baseline(ctx: DeploymentContext) -> Baseline | None:
    """The baseline read at the switch and stored with the hand-off, if it was."""
    stored = ctx.deployment.watch_baseline
    return Baseline.from_stored(stored) if stored else None


def window_start(ctx: DeploymentContext) -> datetime.datetime | None:
    """When the watch window began, if its baseline was read before the watch (at the switch)."""
    baseline = _stored_baseline(ctx)
    return baseline.at if baseline else None


def watch(ctx: DeploymentContext) -> None:
    """Until the window ends (or someone promotes): HAProxy's health of the new servers,
    the 5xx ratio of their answers, and their containers. Any trouble: roll back."""
    window = ctx.app.watch_window
    baseline = _stored_baseline(ctx) or read_baseline(ctx)
    ends = baseline.at + datetime.timedelta(seconds=window)
    ctx.save(watch_until=ends)
    ctx.say_web(f"Watching the new release for {window}s; the old one stays ready")
    deadline = time.monotonic() + (ends - timezone.now()).total_seconds()
    while time.monotonic() < deadline:
        trouble = _trouble(ctx, baseline=baseline.answers, health=baseline.health)
        if trouble:
            roll_back(ctx, trouble)
        if _promoted(ctx):
            break
        time.sleep(WATCH_INTERVAL)
    changes.withdraw_backups(ctx.deployment)
    since = _answered(ctx).since(baseline.answers)
    ctx.say_web(f"Watch passed: {since.total} responses, {since.errors} 5xx")


def _trouble(ctx: DeploymentContext, *, baseline: stats.Responses, health: HealthBaseline) -> str:
    """Why the new release must be rolled back, or "" if it is fine."""
    found = broken(ctx, since=health)
    if found:
        return found
    since = _answered(ctx).since(baseline)
    limit = ctx.app.watch_error_percent
    if since.total >= ctx.app.watch_min_requests and since.error_percent > limit:
        return f"{since.errors} of {since.total} responses were 5xx ({since.error_percent:.1f}% > {limit:g}%)"
    return ""


def health_baseline(ctx: DeploymentContext) -> HealthBaseline:
    deployment = ctx.deployment
    servers = readings.servers(ctx.app, deployment.colour, len(deployment.containers))
    return HealthBaseline(restarts={c.id: containers.state(c.id).restarts for c in deployment.containers},
                          downs={server.slot: server.downs for server in servers})


def broken(ctx: DeploymentContext, *, since: HealthBaseline) -> str:
    """HAProxy marked a new server DOWN (or has since `since` was read), or a new container exited
    or restarted since then; "" if none of it."""
    deployment = ctx.deployment
    servers = readings.servers(ctx.app, deployment.colour, len(deployment.containers))
    down = [server.describe() for server in servers if server.down or server.downs > since.downs.get(server.slot, 0)]
    if down:
        return f"HAProxy's health check marked the new release DOWN: {', '.join(down)}"
    for container in deployment.containers:
        state = containers.state(container.id)
        if not state.running or state.restarts > since.restarts[container.id]:
            return f"container {container.name} exited (code {state.exit_code})"
    return ""


def _answered(ctx: DeploymentContext) -> stats.Responses:
    deployment = ctx.deployment
    return stats.answered(readings.servers(ctx.app, deployment.colour, len(deployment.containers)))


def _promoted(ctx: DeploymentContext) -> bool:
    promoted = lifecycle.promoted_by(ctx.deployment.pk)
    if promoted is not None:
        ctx.log.write(f"Promoted by {promoted or 'a user'}: the rest of the watch is skipped")
    return promoted is not None

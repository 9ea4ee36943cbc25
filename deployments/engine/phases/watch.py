"""The watch: for the app's watch window after the switch (or until someone promotes), HAProxy's
health of the new servers, the 5xx ratio of their answers, and their containers; any trouble
rolls back (rollback.py). The old release stays ready meanwhile, as backup servers."""
import time

from django.utils import timezone

from deployments.dockerd import containers
from deployments.engine import lifecycle
from deployments.engine.phases.context import DeploymentContext
from deployments.engine.phases.rollback import roll_back
from deployments.haproxy import stats
from deployments.traffic import changes, readings

WATCH_INTERVAL = 0.1  # how often the watch looks; detection to rollback stays well under a second


def watch(ctx: DeploymentContext) -> None:
    """Until the window ends (or someone promotes): HAProxy's health of the new servers,
    the 5xx ratio of their answers, and their containers. Any trouble: roll back."""
    window = ctx.app.watch_window
    ctx.save(watch_until=timezone.now() + timezone.timedelta(seconds=window))
    ctx.say_web(f"Watching the new release for {window}s; the old one stays ready")
    baseline = _answered(ctx)
    restarts = restart_counts(ctx)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        trouble = _trouble(ctx, baseline=baseline, restarts=restarts)
        if trouble:
            roll_back(ctx, trouble)
        if _promoted(ctx):
            break
        time.sleep(WATCH_INTERVAL)
    changes.withdraw_backups(ctx.deployment)
    since = _answered(ctx).since(baseline)
    ctx.say_web(f"Watch passed: {since.total} responses, {since.errors} 5xx")


def _trouble(ctx: DeploymentContext, *, baseline: stats.Responses, restarts: dict[str, int]) -> str:
    """Why the new release must be rolled back, or "" if it is fine."""
    found = broken(ctx, restarts=restarts)
    if found:
        return found
    since = _answered(ctx).since(baseline)
    limit = ctx.app.watch_error_percent
    if since.total >= ctx.app.watch_min_requests and since.error_percent > limit:
        return f"{since.errors} of {since.total} responses were 5xx ({since.error_percent:.1f}% > {limit:g}%)"
    return ""


def restart_counts(ctx: DeploymentContext) -> dict[str, int]:
    """How often Docker restarted each new container so far (see broken)."""
    return {c.id: containers.state(c.id).restarts for c in ctx.deployment.containers}


def broken(ctx: DeploymentContext, *, restarts: dict[str, int]) -> str:
    """HAProxy marked a new server DOWN, or a new container exited or restarted since
    `restarts` was read; "" if neither."""
    deployment = ctx.deployment
    servers = readings.servers(ctx.app, deployment.colour, len(deployment.containers))
    down = [server.describe() for server in servers if server.down]
    if down:
        return f"HAProxy's health check marked the new release DOWN: {', '.join(down)}"
    for container in deployment.containers:
        state = containers.state(container.id)
        if not state.running or state.restarts > restarts[container.id]:
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

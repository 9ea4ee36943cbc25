"""What each release's backend answered during a deployment (and 5xx among them), for the row and
/metrics: HAProxy's counters read at the start (the baseline, stored for the task that carries on
after verify) and at the end. HAProxy down: the deployment runs without these numbers."""
from deployments.engine.phases.context import DeploymentContext
from deployments.haproxy import stats
from deployments.traffic.table import MAX_REPLICAS
from deployments.traffic import readings


def read_baseline(ctx: DeploymentContext) -> None:
    ctx.traffic_before = _backend_responses(ctx)
    ctx.canary_slots_before = _canary_slot_responses(ctx)


def traffic(ctx: DeploymentContext) -> dict:
    """Requests each release's backend answered during this deployment, and 5xx among them."""
    after = _backend_responses(ctx)
    if not after or not ctx.traffic_before:
        return {}
    old = after[ctx.old_colour].since(ctx.traffic_before[ctx.old_colour])
    new_colour = ctx.app.idle_colour_of(ctx.old_colour)
    new = after[new_colour].since(ctx.traffic_before[new_colour])
    canary_slots = _canary_slot_responses(ctx)
    if ctx.canary is not None and canary_slots and ctx.canary_slots_before:
        # A canary's requests went through the old backend's c slots: they are the new release's.
        moved = canary_slots.since(ctx.canary_slots_before)
        old, new = stats.Responses(old.total - moved.total, old.errors - moved.errors), new + moved
    return {"old": {"requests": old.total, "failed": old.errors}, "new": {"requests": new.total, "failed": new.errors}}


def stored_baseline(ctx: DeploymentContext) -> dict:
    """The traffic counters read at the start, for the row (see restore_baseline)."""
    slots = ctx.canary_slots_before
    return {"backends": {colour: [r.total, r.errors] for colour, r in (ctx.traffic_before or {}).items()},
            "canary_slots": [slots.total, slots.errors] if slots else None}


def restore_baseline(ctx: DeploymentContext, stored: dict) -> None:
    """The counters stored_baseline kept, back in the context (in the task that carries on)."""
    backends = {colour: stats.Responses(*counts) for colour, counts in stored.get("backends", {}).items()}
    slots = stored.get("canary_slots")
    ctx.traffic_before, ctx.canary_slots_before = backends or None, stats.Responses(*slots) if slots else None


def _backend_responses(ctx: DeploymentContext) -> dict[str, stats.Responses] | None:
    try:
        return readings.backend_responses(ctx.app)
    except Exception:  # HAProxy down: the deployment still runs, without traffic numbers
        return None


def _canary_slot_responses(ctx: DeploymentContext) -> stats.Responses | None:
    try:
        return readings.canary_responses(ctx.app, ctx.old_colour, 0, MAX_REPLICAS)[1]
    except Exception:  # HAProxy down: the deployment still runs, without traffic numbers
        return None

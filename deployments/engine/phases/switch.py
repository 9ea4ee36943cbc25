"""The canary (if the app has steps) and the switch: traffic moves to the new release, in steps
with a comparison each, then in one map commit."""
from deployments.dockerd import containers
from deployments.engine import lifecycle
from deployments.engine.canary import Canary, CanaryFailed
from deployments.engine.phases.context import DeploymentContext, RolledBack
from deployments.engine.phases.rollback import undo_before_switch
from deployments.engine.phases.watch import broken, health_baseline
from deployments.traffic import changes


def run_canary(ctx: DeploymentContext) -> None:
    """canary.Canary moves the weights and compares; a worse new release is undone as any
    failure before the switch is, and the deployment ends rolled back."""
    health = health_baseline(ctx)
    ctx.canary = Canary(ctx.deployment, ctx.previous, ctx.log, ctx.say_web,
                        broken=lambda: broken(ctx, since=health))
    try:
        ctx.canary.run()
        lifecycle.consume_promote(ctx.deployment.pk)  # a Promote as the last step ended: not the watch's
    except CanaryFailed as failure:
        undo_before_switch(ctx)
        raise RolledBack(f"{failure}; traffic is back on deployment #{ctx.previous.id}", failure.kind) from None


def switch(ctx: DeploymentContext) -> None:
    # Nothing between HAProxy's UP and this commit but the phase bookkeeping: every
    # millisecond here is a request the old release answers although the new one is ready.
    try:
        routed_at = changes.switch_to(ctx.deployment)
    finally:
        ctx.leave_hot_path()
    switched_after_ms = ctx.switch_ms = (routed_at - ctx.healthy_at) * 1000
    ctx.switched = True
    ctx.say_web(f"Traffic for {', '.join(ctx.app.hostnames())} now goes to {ctx.deployment.colour}, "
                f"{switched_after_ms:.1f} ms after HAProxy reported it UP")
    # Restarts only from here: a crash before the switch shows as an exit code, not a restart loop.
    for container in ctx.deployment.containers:
        containers.enable_restarts(container.id, ctx.project.web.restart)

"""Going back: before the switch, what this deployment started is removed (in a recreate, the old
release started again) and the old release never stopped serving; after it, traffic is switched
back to the old release while it still runs (the watch), else the new release is kept."""
import logging
import time

from deployments.dockerd import containers
from deployments.engine import chain
from deployments.engine import release_files
from deployments.engine.phases.context import DeploymentContext, RolledBack
from deployments.engine.phases.recreate import restart_previous
from deployments.engine.retire import stop_web
from deployments.models import Deployment
from deployments.traffic import changes

logger = logging.getLogger(__name__)


def _kind_of(trouble: str) -> str:
    """What the watch saw, in a word (see watch._trouble)."""
    if "DOWN" in trouble:
        return "health"
    if "5xx" in trouble:
        return "5xx"
    return "exited" if "exited" in trouble else "error"


def roll_back(ctx: DeploymentContext, reason: str) -> None:
    """Map back to the old release in one runtime operation (file and rows right after),
    then remove the new one."""
    detected = time.monotonic()
    ctx.enter_hot_path()
    try:
        routed_at = changes.switch_to(ctx.previous)
    finally:
        ctx.leave_hot_path()
    ctx.log.write(f"Rolled back in {(routed_at - detected) * 1000:.0f} ms: {reason}")
    changes.withdraw_backups(ctx.deployment)
    changes.withdraw_servers(ctx.deployment)
    stop_web(ctx.deployment, stop_timeout=ctx.web_stop_timeout(), say=ctx.log.write)  # it served: its pre_stop
    ctx.companions.undo(served=True)  # a stateful service this release replaced: the old one is back
    release_files.remove_unused(ctx.app.name, ctx.app.id, ending=ctx.deployment.id)
    chain.remove_network(ctx)  # the old release's chain, on its own network, served on
    if ctx.canary is not None:
        ctx.canary.mark_rolled_back()
    raise RolledBack(f"watch: {reason}; traffic is back on deployment #{ctx.previous.id}", _kind_of(reason))


def recover_after_switch(ctx: DeploymentContext, reason: str) -> tuple[str, str]:
    """During the watch the old release still runs: go back to it. During the drain the
    new release is live and fine: keep it; reconcile removes what the drain left.
    Returns the state the deployment ends in and why."""
    if ctx.deployment.phase == "watch":
        try:
            roll_back(ctx, reason)
        except RolledBack as rollback:
            return Deployment.State.ROLLED_BACK, str(rollback)
        except Exception as error:
            return Deployment.State.FAILED, f"{reason}; rolling back failed too: {error}"
    ctx.log.write("The new release is live; reconcile will remove what the drain left behind")
    return Deployment.State.FAILED, reason


def undo_before_switch(ctx: DeploymentContext) -> None:
    """Remove what this deployment started; in a recreate, bring the old release back. The
    other services first: the old web release needs its stateful services back."""
    try:
        if ctx.companions is not None:
            ctx.companions.undo()
    except Exception as error:
        logger.exception("clean-up of deployment %s's services incomplete", ctx.deployment.id)
        ctx.log.write(f"Clean-up of the services incomplete ({error}); reconcile will finish it")
    try:
        _remove_new_release(ctx)
        if ctx.stopped_previous and ctx.previous is not None:
            restart_previous(ctx)
        release_files.remove_unused(ctx.app.name, ctx.app.id, ending=ctx.deployment.id)
        chain.remove_network(ctx)
    except Exception as error:
        logger.exception("clean-up of deployment %s incomplete", ctx.deployment.id)
        ctx.log.write(f"Clean-up incomplete ({error}); reconcile will finish it")


def _remove_new_release(ctx: DeploymentContext) -> None:
    """Its servers out of HAProxy (the canary's, the backups, its own), then its containers."""
    deployment = ctx.deployment
    if ctx.canary is not None:  # whatever the row says: HAProxy may not have taken the last change
        ctx.canary.withdraw()
    if deployment.serves_backup:
        changes.withdraw_backups(deployment)
    if deployment.holds_backend:
        changes.withdraw_servers(deployment)
    elif ctx.armed is not None:  # armed, never published
        changes.disarm_servers(*ctx.armed)
    for container in deployment.containers:
        containers.stop_and_remove(container.id, timeout=0)

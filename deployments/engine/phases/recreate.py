"""Recreate (zero_downtime off, or a web service that cannot run twice): the old release stops
before the new one starts, kept stopped (not removed) so that it can be started again if the new
release fails before its switch."""
from deployments.dockerd import containers
from deployments.engine import lifecycle
from deployments.engine.phases.context import DeploymentContext
from deployments.engine.retire import stop_web, take_out_of_service
from deployments.traffic import changes


def stop_previous(ctx: DeploymentContext) -> None:
    """Recreate: the old release stops before the new one starts; kept stopped, not
    removed, so it can be started again if the new release fails."""
    previous = ctx.previous
    if previous is None:
        return
    ctx.log.write("Recreate: stopping the running release first; HAProxy answers 503 until the new one is up")
    take_out_of_service(previous, say=ctx.log.write)
    stop_web(previous, stop_timeout=ctx.web_stop_timeout(), say=ctx.log.write, keep=True)
    if ctx.project.web.container_name:  # the new one takes the name
        for container in previous.containers:
            containers.set_aside(container, str(ctx.deployment.id))
    changes.close_sessions(previous)
    ctx.stopped_previous = True


def restart_previous(ctx: DeploymentContext) -> None:
    """The new release failed before its switch: the stopped old release serves again."""
    previous = ctx.previous
    lifecycle.record_containers(previous, [containers.bring_back(c) for c in previous.containers])
    changes.publish_servers(previous)
    ctx.log.write("The previous release was started again and serves traffic")

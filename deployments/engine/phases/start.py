"""The start phase: the images there, a Compose app's other services (stateful ones, then what
the web service waits for), the release commands, then the web service's containers in the idle
colour, with the app's limits. (A recreate stops the old release in between: recreate.py.)"""
from dataclasses import replace

from deployments.dockerd import containers, daemon, images
from deployments.engine import chain, hooks, jobs, release_command, release_files
from deployments.engine.companions import Companions, environment_of, run_options
from deployments.engine.phases import pull
from deployments.engine.phases.context import Cancelled, DeploymentContext


def check_images(ctx: DeploymentContext) -> None:
    pull.ensure_pinned(ctx)  # a redeploy's image services: pulled again by digest if gone
    for image in ctx.images.values():
        if not images.image_exists(image):  # a redeploy's, removed by hand meanwhile
            raise daemon.RuntimeFailure(f"the image {image} is gone; deploy its commit instead")


def start_companions(ctx: DeploymentContext) -> None:
    """The release's files (a Compose app's bind mounts, secrets, configs), a Compose app's stateful
    services, its one-shot ones (engine/jobs.py), then whatever the web service waits for."""
    release_files.prepare(app_name=ctx.app.name, app_id=ctx.app.id, deployment_id=ctx.deployment.id,
                          commit=ctx.deployment.commit_sha, image=ctx.images.get(ctx.project.web.name) or
                          ctx.deployment.image, project=ctx.project, log=ctx.log)
    ctx.companions = companions(ctx)
    ctx.companions.start_stateful()
    try:
        jobs.run_jobs(ctx.companions, should_stop=ctx.cancel_requested_in_thread)
    except jobs.JobStopped:
        raise Cancelled() from None
    chain.start_chain(ctx)
    ctx.companions.wait_for_dependencies(ctx.project.web)


def companions(ctx: DeploymentContext) -> Companions:
    previous = ctx.previous.services if ctx.previous else []
    made = Companions(app_name=ctx.app.name, app_id=ctx.app.id, deployment_id=ctx.deployment.id,
                      project=ctx.project, images=ctx.images, previous=previous, environment=ctx.environment,
                      limits=limits(ctx, quiet=True), log=ctx.log, record=lambda services: ctx.save(services=services),
                      deadline_seconds=ctx.app.health_deadline)
    made.release_network = chain.network_of(ctx)
    if ctx.previous is not None:
        made.pre_stop = hooks.services_pre_stop(ctx.previous)
    return made


def run_release_commands(ctx: DeploymentContext) -> None:
    app = ctx.app
    try:
        release_command.run_all(app_name=app.name, app_id=app.id, deployment_id=ctx.deployment.id,
                                project=ctx.project, app_command=app.release_command, images=ctx.images,
                                environment=ctx.environment, limits=limits(ctx, quiet=True), log=ctx.log,
                                compose=bool(ctx.deployment.compose_text), should_stop=ctx.cancel_requested_in_thread)
    except release_command.ReleaseCommandStopped:
        raise Cancelled() from None


def start_web(ctx: DeploymentContext) -> None:
    """The web service's replicas, in the colour that does not serve."""
    app = ctx.app
    colour = app.idle_colour
    ctx.save(colour=colour)
    web_limits = limits(ctx)
    web = ctx.project.web
    options = replace(run_options(app.name, app.id, web, deployment_id=ctx.deployment.id),
                      release_network=ctx.companions.release_network)
    for index in range(web.replicas):
        container = containers.start_release_container(app.name, str(ctx.deployment.id), index,
                                                       ctx.deployment.image, web.routed_port or app.port,
                                                       environment_of(web, ctx.environment), web_limits, options,
                                                       fixed_name=web.container_name)
        ctx.save(containers=[*ctx.deployment.containers, container])
        ctx.say_web(f"Started {container.name} at {container.ip}:{container.port} ({colour})")
        hooks.run_post_start(web.post_start, service=web.name, container_id=container.id,
                             container_name=container.name, say=ctx.log.write)


def limits(ctx: DeploymentContext, *, quiet: bool = False) -> containers.ContainerLimits:
    app = ctx.app
    limits = containers.ContainerLimits(memory_mb=app.memory_limit_mb, cpus=app.cpu_limit,
                                        pids=app.pids_limit, capabilities=tuple(app.capabilities.split()))
    if not quiet:
        ctx.log.write(f"Limits per container: {limits.memory_mb} MiB memory, {limits.cpus:g} CPU, {limits.pids} "
                      f"processes; capabilities given back: {' '.join(limits.capabilities) or 'none'}")
    return limits

"""The verify phase: the containers join their colour's backend (the old release as backups if a
watch follows); each new container's port, health path (and a Compose healthcheck) must answer
the worker, and HAProxy's own check must report every new server UP.

HAProxy 2.6 checks a slot that leaves maintenance first when its check task next comes round,
anywhere up to a whole check interval later (1 s as shipped), and nothing in the runtime API
brings that check forward. So the slots are armed before the build (arm): out of maintenance at
an address that refuses, so HAProxy has found them DOWN by the time the containers start, and
checks them every `downinter` (100 ms); given its container's address, a slot is UP within that.
Once UP, a server is checked every interval again."""
import logging
import time

from deployments.dockerd import containers, output
from deployments.dockerd.values import Container
from deployments.engine import health
from deployments.engine.phases.context import DeploymentContext, PhaseFailed
from deployments.traffic import changes, readings

logger = logging.getLogger(__name__)
HAPROXY_UP_GRACE = 10.0  # HAProxy's own check runs every second; allow a few rounds
UP_POLL_INTERVAL = 0.02  # the switch follows HAProxy's "UP" by at most this plus a few ms


def arm(ctx: DeploymentContext) -> None:
    """Before the build (or a redeploy's start): the slots the web service's replicas will take,
    in the colour that does not serve, armed. Only time rides on it: a deployment never fails
    for it (publish_servers then finds the slots in maintenance, as before)."""
    backend, count = ctx.app.backend_name(ctx.app.idle_colour), ctx.project.web.replicas
    ctx.armed = (backend, count)  # first: a failure halfway through still leaves them to be disarmed
    try:
        changes.arm_servers(backend, count)
    except Exception as error:  # HAProxy not answering: publish_servers will say so, in verify
        logger.warning("deployment %s: slots not armed: %s", ctx.deployment.id, error)


def verify(ctx: DeploymentContext) -> None:
    """The containers join their backend first, so HAProxy's checks run while the worker's own
    do (no request reaches that backend before the switch); with the old release as backups if a
    watch follows, ready before the switch, so the switch itself is one map commit."""
    deadline = time.monotonic() + ctx.app.health_deadline
    # A container that exited before Docker gave it an address has none to publish: its check
    # below reports the exit.
    published = all(container.ip for container in ctx.deployment.containers)
    if published:
        changes.publish_servers(ctx.deployment, with_backups=ctx.watch_applies())
    for container in ctx.deployment.containers:
        verify_container(ctx, container, deadline=deadline)
    if not published:
        changes.publish_servers(ctx.deployment, with_backups=ctx.watch_applies())
    wait_for_haproxy_up(ctx, deadline=max(deadline, time.monotonic() + HAPROXY_UP_GRACE))


def verify_container(ctx: DeploymentContext, container: Container, *, deadline: float) -> None:
    def alive() -> bool:
        ctx.raise_if_cancelled()
        return containers.state(container.id).running

    check = ctx.deployment.health_check
    try:
        health.wait_for_port(container.ip, container.port, deadline, alive)
        ctx.say_web(f"{container.name}: port {container.port} open")
        health.wait_for_status(container.ip, container.port, check["path"], check["host"],
                               check["status"], check["timeout"], deadline, alive)
        ctx.say_web(f"{container.name}: GET {check['path']} answered {check['status']}")
        if ctx.project.web.healthcheck:  # the compose file's own check gates the switch too
            health.wait_for_docker_health(container.name, lambda: containers.state(container.id).health, deadline,
                                          alive)
            ctx.say_web(f"{container.name}: healthcheck passed (Docker reports healthy)")
    except health.ContainerExited:
        raise PhaseFailed("verify", _exit_report(ctx, container)) from None


def _exit_report(ctx: DeploymentContext, container: Container) -> str:
    exited = containers.state(container.id)
    last_output = output.tail(container.id) or "(no output)"
    ctx.log.write(f"Last output of {container.name}:\n{last_output}")
    return f"container {container.name} exited with code {exited.exit_code}; last output:\n{last_output}"


def wait_for_haproxy_up(ctx: DeploymentContext, *, deadline: float) -> None:
    """Until HAProxy's own check reports every new server UP; then the hot path until the switch."""
    wanted = len(ctx.deployment.containers)
    while True:
        servers = readings.servers(ctx.app, ctx.deployment.colour, wanted)
        if all(server.checked_up for server in servers):
            ctx.healthy_at = time.monotonic()
            ctx.enter_hot_path()
            ctx.say_web(f"HAProxy reports {wanted} server(s) UP in {ctx.app.backend_name(ctx.deployment.colour)}")
            return
        ctx.raise_if_cancelled()
        if time.monotonic() >= deadline:
            seen = ", ".join(server.describe() for server in servers)
            raise PhaseFailed("verify", f"HAProxy's health check did not report the new servers UP: {seen}")
        time.sleep(UP_POLL_INTERVAL)

"""Compose's lifecycle hooks run around a container's life (compose/hooks.py reads them):
`post_start` in each new container once it started (a failure fails the deployment before the
switch: the new container is then removed like any that did not start), `pre_stop` before a
container that served is stopped gracefully (a drain, a recreate, a rollback, a reconcile that
retires what a lost worker's drain would have, a service replaced or retired; engine/retire.py
stops a release's web containers for all of them), bounded by its stop grace period (a failure is
said in the log and the container is stopped anyway: it is going either way). A container that
never served (a failure before the switch) is removed without them, as Compose's hooks are for a
service's own life, not for Switchyard's undo."""
from typing import Callable

from deployments.compose.hooks import Hook
from deployments.compose.project import Project
from deployments.dockerd import daemon, execs
from deployments.models import Deployment

POST_START_TIMEOUT = 60.0  # seconds per hook
MIN_PRE_STOP_TIMEOUT = 1.0

Say = Callable[[str], None]


class HookFailed(daemon.RuntimeFailure):
    """A post_start hook failed; the message names the service, the container and the hook."""


def run_post_start(hooks: tuple[Hook, ...], *, service: str, container_id: str, container_name: str,
                   say: Say) -> None:
    for hook in hooks:
        result = _run(hook, container_id, POST_START_TIMEOUT)
        shown = " ".join(hook.command)
        if result.exit_code != 0:
            why = result.error or f"exited with code {result.exit_code}"
            raise HookFailed(f"service {service}: post_start {shown!r} in {container_name} {why}"
                             + (f"; output:\n{result.output}" if result.output else ""))
        say(f"[{service}] post_start {shown!r} in {container_name} done")


def run_pre_stop(hooks: tuple[Hook, ...], *, service: str, container_id: str, grace_seconds: float,
                 say: Say) -> None:
    for hook in hooks:
        result = _run(hook, container_id, max(grace_seconds, MIN_PRE_STOP_TIMEOUT))
        if result.exit_code != 0:
            why = result.error or f"exited with code {result.exit_code}"
            say(f"[{service}] pre_stop {' '.join(hook.command)!r} {why}; stopping the container anyway"
                + (f": {result.output}" if result.output else ""))


def recorded_pre_stop(project: Project) -> dict:
    """What a deployment keeps of its services' pre_stop hooks (Deployment.pre_stop), as its
    compose file resolved them at deploy: whatever stops one of its containers later runs these,
    a reconcile too, and the file is not read again with settings changed since."""
    return {"web": [hook.as_dict() for hook in project.web.pre_stop],
            "services": {spec.name: [hook.as_dict() for hook in spec.pre_stop] for spec in project.services
                         if spec.pre_stop and spec.name != project.web.name}}


def web_pre_stop(release: Deployment) -> tuple[Hook, ...]:
    """The pre_stop hooks of `release`'s web service (none for a release recorded without them)."""
    return tuple(Hook.from_dict(hook) for hook in release.pre_stop.get("web", ()))


def services_pre_stop(release: Deployment) -> dict[str, tuple[Hook, ...]]:
    """The pre_stop hooks of `release`'s other services, by service name."""
    return {name: tuple(Hook.from_dict(hook) for hook in stored)
            for name, stored in release.pre_stop.get("services", {}).items()}


def _run(hook: Hook, container_id: str, timeout: float) -> execs.ExecResult:
    """docker exec keeps the container's environment; the hook's own goes on top."""
    return execs.run_in(container_id, hook.command, user=hook.user, working_dir=hook.working_dir,
                        environment=dict(hook.environment), timeout=timeout)

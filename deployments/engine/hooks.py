"""Compose's lifecycle hooks run around a container's life (compose/hooks.py reads them):
`post_start` in each new container once it started (a failure fails the deployment before the
switch: the new container is then removed like any that did not start), `pre_stop` before a
container is stopped, bounded by its stop grace period (a failure is said in the log and the
container is stopped anyway: it is going either way)."""
from typing import Callable

from deployments.compose.file import load
from deployments.compose.hooks import Hook
from deployments.compose.project import ComposeError
from deployments.dockerd import daemon, execs

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


def pre_stop_hooks(compose_text: str, *, web_service: str, environment: dict[str, str]) -> dict[str, tuple[Hook, ...]]:
    """Each service's pre_stop as the release that is stopping wrote it (its own compose file: a
    newer release's hook may not exist in the old image); none if that file no longer reads."""
    if not compose_text:
        return {}
    try:
        project = load(compose_text, web_service, environment)
    except ComposeError:
        return {}
    return {spec.name: spec.pre_stop for spec in project.services if spec.pre_stop}


def _run(hook: Hook, container_id: str, timeout: float) -> execs.ExecResult:
    """docker exec keeps the container's environment; the hook's own goes on top."""
    return execs.run_in(container_id, hook.command, user=hook.user, working_dir=hook.working_dir,
                        environment=dict(hook.environment), timeout=timeout)

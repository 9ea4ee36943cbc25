"""Release commands: run once per deployment in a container of the new image, with the app's
environment, after the build and before the new release starts (the place for migrations).

A single-Dockerfile app has the app's `release_command`; a Compose service has its own
(`x-switchyard-release-command`), and the web service falls back to the app's. They run in the
project's dependency order, once the stateful services are up (a migration needs its database),
and before a recreate stops the old release: a failing one leaves the old release serving.
"""
import shlex
from dataclasses import replace
from typing import Callable

from django.conf import settings

from deployments.compose.project import Project, ServiceSpec
from deployments.dockerd import containers, daemon, one_off
from deployments.dockerd.values import LABEL_APP, LABEL_DEPLOYMENT, LABEL_SERVICE, name_prefix
from deployments.engine.companions import environment_of, run_options
from deployments.engine.logs import DeploymentLog
from deployments.validators import release_command_words


class ReleaseCommandFailed(daemon.RuntimeFailure):
    """A release command exited non-zero, timed out, or could not run; the message says which."""


class ReleaseCommandStopped(Exception):
    """The deployment was cancelled while a release command ran."""


def commands(project: Project, app_command: str) -> list[tuple[ServiceSpec, tuple[str, ...]]]:
    """(service, command) for each service that has one, in dependency order."""
    fallback = tuple(release_command_words(app_command)) if app_command else ()
    chosen = [(spec, spec.release_command or (fallback if spec is project.web else ())) for spec in project.services]
    return [(spec, command) for spec, command in chosen if command]


def run_all(*, app_name: str, app_id: int, deployment_id: int, project: Project, app_command: str,
            images: dict[str, str], environment: dict[str, str], limits: containers.ContainerLimits,
            log: DeploymentLog, compose: bool, should_stop: Callable[[], bool]) -> None:
    timeout = settings.SWITCHYARD["RELEASE_COMMAND_TIMEOUT"]
    for spec, command in commands(project, app_command):
        prefix = f"[{spec.name}] " if compose else ""
        shown = shlex.join(command)
        log.write(f"{prefix}Release command: {shown}")
        log.flush()  # a migration may be silent for minutes: the page must show it is running
        options = replace(run_options(app_name, app_id, spec, deployment_id=deployment_id), command=command,
                          aliases=(), healthcheck=None)
        name = f"{name_prefix()}-{app_name}_{deployment_id}-{spec.docker_name}-release"
        labels = {LABEL_APP: app_name, LABEL_DEPLOYMENT: str(deployment_id),
                  LABEL_SERVICE: spec.docker_name}
        ended = one_off.run_once(name, images[spec.name], environment_of(spec, environment), labels, limits, options,
                                 on_line=lambda line: log.output(f"{prefix}[release] {line}"), timeout=timeout,
                                 should_stop=should_stop, on_quiet=log.flush_pending)
        if ended.stopped:
            raise ReleaseCommandStopped()
        if ended.timed_out:
            raise ReleaseCommandFailed(f"{prefix}release command {shown!r} ran longer than {timeout}s and was stopped")
        if ended.exit_code != 0:
            raise ReleaseCommandFailed(f"{prefix}release command {shown!r} exited with code {ended.exit_code}; "
                                       "the old release was not touched")
        log.write(f"{prefix}Release command done")

"""One-shot services (Role.JOB: another service waits for them with
`depends_on: {X: {condition: service_completed_successfully}}`, a migration say): each runs to
its end at each deploy, in dependency order, once the stateful services it needs are up and
before the services that wait for it start. A non-zero exit (or a run past the deadline) fails
the deployment before the switch, with the service's last output: the running release keeps
serving. The container is removed once it ended; nobody finds it by name (no alias)."""
from collections import deque
from dataclasses import replace
from typing import Callable

from django.conf import settings

from deployments.compose.project import Role
from deployments.dockerd import daemon, one_off
from deployments.dockerd.values import LABEL_APP, LABEL_DEPLOYMENT, LABEL_SERVICE, name_prefix
from deployments.engine.companions import Companions, environment_of, run_options

LAST_LINES = 20  # of a failed job's output, in the deployment's error


class JobFailed(daemon.RuntimeFailure):
    """A one-shot service exited non-zero or ran too long; the message names it, with its last output."""


class JobStopped(Exception):
    """The deployment was cancelled while a one-shot service ran."""


def run_jobs(companions: Companions, *, should_stop: Callable[[], bool]) -> None:
    for spec in companions.project.of_role(Role.JOB):
        companions.wait_for_dependencies(spec)
        _run(companions, spec, should_stop)


def _run(companions: Companions, spec, should_stop: Callable[[], bool]) -> None:
    log, timeout = companions.log, settings.SWITCHYARD["RELEASE_COMMAND_TIMEOUT"]
    log.write(f"[{spec.name}] one-shot: running to its end before the services that wait for it")
    log.flush()
    last: deque[str] = deque(maxlen=LAST_LINES)

    def on_line(line: str) -> None:
        last.append(line)
        log.output(f"[{spec.name}] {line}")

    options = replace(run_options(companions.app_name, companions.app_id, spec, deployment_id=companions.deployment_id),
                      aliases=(), healthcheck=None)
    deployment = str(companions.deployment_id)
    ended = one_off.run_once(
        f"{name_prefix()}-{companions.app_name}_{deployment}-{spec.name}-job", companions.images[spec.name],
        environment_of(spec, companions.environment),
        {LABEL_APP: companions.app_name, LABEL_DEPLOYMENT: deployment, LABEL_SERVICE: spec.name},
        companions.limits, options, on_line=on_line, timeout=timeout, should_stop=should_stop,
        on_quiet=log.flush_pending)
    if ended.stopped:
        raise JobStopped()
    output = "\n".join(last) or "(no output)"
    if ended.timed_out:
        raise JobFailed(f"service {spec.name}: ran longer than {timeout}s and was stopped; last output:\n{output}")
    if ended.exit_code != 0:
        raise JobFailed(f"service {spec.name}: exited with code {ended.exit_code}; the running release was not "
                        f"touched; last output:\n{output}")
    log.write(f"[{spec.name}] completed successfully")

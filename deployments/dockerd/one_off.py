"""A container run to its end (a release command), its output followed, killed at its deadline."""
from dataclasses import dataclass
from typing import Callable

import docker.errors

from deployments.dockerd import cancel, containers, daemon, networks, output
from deployments.dockerd.containers import ContainerLimits, RunOptions
from deployments.dockerd.quiet_ticks import QUIET, QUIET_SECONDS, with_quiet_ticks
from deployments.dockerd.values import LABEL_APP, instance_labels


@dataclass(frozen=True)
class OneOff:
    """How a one-off container (a release command) ended."""
    exit_code: int | None  # None: stopped before it ended
    timed_out: bool = False
    stopped: bool = False  # on request (the deployment was cancelled)


def run_once(name: str, image: str, env: dict[str, str], labels: dict[str, str], limits: ContainerLimits,
             options: RunOptions, on_line: Callable[[str], None], timeout: int,
             should_stop: Callable[[], bool] = lambda: False, on_quiet: Callable[[], None] = lambda: None) -> OneOff:
    """Run a container to its end on its app's network, confined like the app's, every output
    line to on_line (on_quiet whenever it has been silent for QUIET_SECONDS); killed after
    `timeout` seconds or when should_stop() turns true. The container is removed in every case."""
    network = networks.ensure_app_network(labels[LABEL_APP])
    try:
        container = daemon.client().containers.create(
            image, name=name, environment=env, labels=instance_labels(**labels), network=network, init=True,
            **limits.host_config(), **options.create_arguments(network))
    except docker.errors.APIError as error:
        raise daemon.RuntimeFailure(f"Docker could not create {name}: {error.explanation or error}") from error
    stop_now = cancel.Deadline(timeout, should_stop)
    try:
        container.start()
        with cancel.StopWatcher(stop_now, lambda: _kill(container)) as watcher:
            _follow(container, on_line, on_quiet)
            exit_code = container.wait(timeout=30).get("StatusCode")
    except docker.errors.APIError as error:
        raise daemon.RuntimeFailure(f"Docker could not run {name}: {error.explanation or error}") from error
    finally:
        containers.stop_and_remove(container.id, timeout=0)
    if watcher.fired:
        return OneOff(None, timed_out=stop_now.expired, stopped=not stop_now.expired)
    return OneOff(exit_code)


def _follow(container, on_line: Callable[[str], None], on_quiet: Callable[[], None]) -> None:
    for line in with_quiet_ticks(output.line_by_line(container.logs(stream=True, follow=True)), QUIET_SECONDS):
        if line is QUIET:
            on_quiet()
        else:
            on_line(line)


def _kill(container) -> None:
    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it ended meanwhile

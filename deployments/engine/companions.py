"""A Compose release's services besides the web one, each deployed the way its role needs.

- Stateful services (named volumes: a database, a cache) are started before the new web
  containers, so that those find them. One whose definition and image did not change keeps
  running, untouched: the new release carries its containers over. One that changed is
  replaced: the old container stops first (two processes must not write one volume), the new
  one starts on the same volume under the same name. The old container is kept, stopped,
  until the deployment succeeds: a failure before the switch starts it again.
- Workers (no routed port, no volume) are replaced after the switch, once the new web
  release passed its watch: the new ones start, then the old ones stop with their
  stop_grace_period. A rollback during the watch thus never has workers to undo.
- `depends_on` is honoured as Compose does: a service starts once those it depends on run,
  or, with `condition: service_healthy`, once Docker's healthcheck reports them healthy.
Services find each other by service name: each container has it as an alias on the app's network.
"""
import hashlib
import json
import time
from dataclasses import asdict, replace
from typing import Callable

from deployments.compose.project import Project, Role, ServiceSpec
from deployments.dockerd.values import Container, ServiceRelease
from deployments.dockerd import containers, daemon, images, output, volumes
from deployments.engine import hooks
from deployments.engine import release_files
from deployments.engine.logs import DeploymentLog

HEALTH_POLL = 0.2
SETTLE_SECONDS = 1.0  # a service without a healthcheck counts as started once it ran this long


class ServiceFailed(daemon.RuntimeFailure):
    """A service did not start or become healthy; the message names it."""


def run_options(app_name: str, app_id: int, spec: ServiceSpec, *, deployment_id: int) -> containers.RunOptions:
    """How the containers of `spec` run: what the compose file says, volumes under the app's names,
    files from the files volume of the deployment that starts them."""
    mounts = tuple((volumes.ensure_volume(app_name, app_id, m.volume), m.target, m.read_only) for m in spec.volumes)
    return containers.RunOptions(
        files=release_files.binds(app_name=app_name, app_id=app_id, deployment_id=deployment_id, spec=spec),
        scratch=spec.anonymous_volumes,
        command=spec.command, entrypoint=spec.entrypoint, working_dir=spec.working_dir, user=spec.user,
        volumes=mounts, aliases=(spec.name, *spec.aliases), healthcheck=spec.healthcheck.docker() if spec.healthcheck else None,
        stop_signal=spec.stop_signal,
        read_only=spec.read_only, tty=spec.tty, labels=spec.labels, runtime=spec.runtime, hostname=spec.hostname,
        stdin_open=spec.stdin_open)


def environment_of(spec: ServiceSpec, app_environment: dict[str, str]) -> dict[str, str]:
    """The app's environment variables, then the service's own `environment` on top."""
    return {**app_environment, **dict(spec.environment)}


def definition(spec: ServiceSpec, environment: dict[str, str], limits: containers.ContainerLimits) -> str:
    """Everything a service's containers are made from besides the image: its compose definition,
    the environment it gets and the app's limits. A change in any of them means new containers."""
    made_of = {"service": spec.definition(), "environment": sorted(environment.items()), "limits": asdict(limits)}
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


class Companions:
    def __init__(self, *, app_name: str, app_id: int, deployment_id: int, project: Project, images: dict[str, str],
                 previous: list[ServiceRelease], environment: dict[str, str], limits: containers.ContainerLimits,
                 log: DeploymentLog, record: Callable[[list[ServiceRelease]], None], deadline_seconds: float) -> None:
        self.app_name, self.app_id, self.deployment_id = app_name, app_id, deployment_id
        self.project, self.images = project, images
        self.previous = {service.name: service for service in previous}
        self.environment, self.limits, self.log, self._record = environment, limits, log, record
        self.deadline_seconds = deadline_seconds
        self.current: dict[str, ServiceRelease] = {}
        self.stopped: list[ServiceRelease] = []  # replaced stateful services, stopped and kept for an undo
        self.pre_stop: dict[str, tuple] = {}  # the previous release's pre_stop hooks per service (engine/hooks.py)
        self.release_network = ""  # the release's own network, if its web service has a chain (engine/chain.py)

    # Before the web release starts --------------------------------------------------------------

    def start_stateful(self) -> None:
        for spec in self.project.of_role(Role.STATEFUL):
            old = self.previous.get(spec.name)
            image_id = images.image_id(self.images[spec.name])
            if old and old.definition == self._definition(spec) and self._same_image(old, spec, image_id) \
                    and self._running(old):
                self._keep(old, "" if old.image_id == image_id else
                           " (its new build has a new image ID from the same inputs: it keeps the image it runs)")
                continue
            if old:
                self._say(spec.name, f"changed: stopping {', '.join(c.name for c in old.containers)} first "
                                "(its volumes are written by one container at a time)")
                for container in old.containers:
                    self._before_stop(old, container)
                    containers.stop(container.id, timeout=old.stop_timeout)
                    if spec.container_name:
                        containers.set_aside(container, str(self.deployment_id))
                self.stopped.append(old)
            self._start(spec, image_id)

    def wait_for_dependencies(self, spec: ServiceSpec) -> None:
        """The web service is not among them to wait for: only workers may depend on it, and they
        start after its release passed verify (HTTP and its healthcheck) and the watch."""
        deadline = time.monotonic() + self.deadline_seconds
        for name, condition in spec.depends_on:
            release = self.current.get(name) or self.previous.get(name)
            for container in release.containers if release else ():
                self._wait_until_ready(name, container, condition == "service_healthy", deadline)

    # After the switch --------------------------------------------------------------------------

    def replace_workers(self) -> None:
        """New workers first, then the old ones stop with their grace period. A worker with a
        container_name cannot run twice: its old container stops first."""
        old_workers = [old for old in self.previous.values() if old.role == Role.WORKER.value]
        for spec in self.project.of_role(Role.WORKER):
            old = self.previous.get(spec.name)
            if spec.container_name and old in old_workers:
                self._retire(old, f"container_name {spec.container_name!r}: stopping the old one first")
                old_workers.remove(old)
            self._start_worker(spec, old if old in old_workers else None)
        for old in old_workers:
            self._retire(old, f"stopping the previous release's {old.name}")

    def _start_worker(self, spec: ServiceSpec, old: ServiceRelease | None) -> None:
        """If the new worker does not start, it is removed and the old one goes on working (the
        release keeps it, so reconcile does too); the deployment then fails with the reason."""
        try:
            self._start(spec, images.image_id(self.images[spec.name]))
        except daemon.RuntimeFailure:
            self._remove_started(spec.name)
            if old is not None:
                self.current[spec.name] = old
                self._record(list(self.current.values()))
                self._say(spec.name, f"the previous release's {', '.join(c.name for c in old.containers)} "
                                     "goes on running")
            raise

    def retire_replaced(self) -> None:
        """Once the deployment succeeded: the stateful containers it replaced, and the services
        the compose file no longer has."""
        for old in self.stopped:
            self._retire(old, "removing the replaced container")
        names = {spec.name for spec in self.project.services}
        for old in self.previous.values():
            if old.name not in names:
                self._retire(old, "no longer in the compose file: stopping it")
        self.stopped = []

    def take_over(self, current: list[ServiceRelease]) -> None:
        """In the task that carries on a deployment after verify: the services as this deployment
        left them (its row), and the stateful ones of the previous release it replaced (stopped,
        kept for an undo until the deployment succeeds)."""
        self.current = {service.name: service for service in current}
        self.stopped = [old for old in self.previous.values() if old.role == Role.STATEFUL.value
                        and old.name in self.current and self.current[old.name].started_by == self.deployment_id]

    # Undo ----------------------------------------------------------------------------------------

    def undo(self, *, served: bool = False) -> None:
        """A failure before the switch: remove what this deployment started (at once: none of it
        served), and start the stateful containers it had stopped again. A rollback after the
        switch (`served`): what it started stops as any container that served, its pre_stop
        hooks first, then SIGTERM and its stop_grace_period."""
        for name in list(self.current):
            self._remove_started(name, served=served)
        for old in self.stopped:
            for container in old.containers:
                containers.bring_back(container)
            self._say(old.name, "started again: the previous release keeps it")
        self._record([])
        self.current, self.stopped = {}, []

    def _remove_started(self, name: str, *, served: bool = False) -> None:
        release = self.current.pop(name, None)
        if release is None or release.started_by != self.deployment_id:
            return
        if served:
            self._retire(release, "the release is rolled back: stopping it")
            return
        for container in release.containers:
            containers.stop_and_remove(container.id, timeout=0)

    # --------------------------------------------------------------------------------------------

    def start_service(self, spec: ServiceSpec) -> None:
        """One service's containers, once those it depends on are ready (the web service's chain)."""
        self._start(spec, images.image_id(self.images[spec.name]))

    def retire(self, old: ServiceRelease, what: str) -> None:
        self._retire(old, what)

    def _keep(self, old: ServiceRelease, why: str = "") -> None:
        self.current[old.name] = old
        self._record(list(self.current.values()))
        self._say(old.name, f"unchanged{why}: keeps running ({', '.join(c.name for c in old.containers)})")

    def _start(self, spec: ServiceSpec, image_id: str) -> None:
        self.wait_for_dependencies(spec)
        # The release's network holds its chain and workers; stateful ones join it once it exists (chain.py).
        network = "" if spec.role == Role.STATEFUL else self.release_network
        options = replace(run_options(self.app_name, self.app_id, spec, deployment_id=self.deployment_id),
                          release_network=network,
                          release_only=spec.role == Role.CHAIN and bool(network))
        release = ServiceRelease(name=spec.name, role=spec.role.value, image=self.images[spec.name],
                                 definition=self._definition(spec), image_id=image_id, containers=(),
                                 started_by=self.deployment_id, stop_timeout=spec.stop_grace_period,
                                 built_from=self._built_from(spec))
        for index in range(spec.replicas):
            container = containers.start_service_container(
                self.app_name, str(self.deployment_id), spec.docker_name, index, release.image,
                environment_of(spec, self.environment), self.limits, options, spec.container_name)
            release = replace(release, containers=(*release.containers, container))
            self.current[spec.name] = release
            self._record(list(self.current.values()))
            self._say(spec.name, f"started {container.name}")
            hooks.run_post_start(spec.post_start, service=spec.name, container_id=container.id,
                                 container_name=container.name, say=self.log.write)
        deadline = time.monotonic() + self.deadline_seconds
        for container in release.containers:
            self._wait_until_ready(spec.name, container, spec.healthcheck is not None, deadline, just_started=True)
            containers.enable_restarts(container.id, spec.restart)

    def _wait_until_ready(self, name: str, container: Container, healthy: bool, deadline: float,
                          just_started: bool = False) -> None:
        """Until Docker reports it healthy or, without a healthcheck, it runs (one just started:
        for SETTLE_SECONDS, so that a process that dies at boot, for want of its configuration,
        say, is caught here)."""
        settled = time.monotonic() + (SETTLE_SECONDS if just_started else 0)
        while True:
            state = containers.state(container.id)
            if not state.running:
                last_output = output.tail(container.id) or "(no output)"
                raise ServiceFailed(f"service {name}: {container.name} exited with code {state.exit_code}; "
                                    f"last output:\n{last_output}")
            if (not healthy and time.monotonic() >= settled) or state.health == "healthy":
                if healthy:
                    self._say(name, f"{container.name} is healthy")
                return
            if time.monotonic() >= deadline:
                raise ServiceFailed(f"service {name}: {container.name} was not healthy within "
                                    f"{self.deadline_seconds:g}s (Docker reports {state.health or 'no health'})")
            time.sleep(HEALTH_POLL)

    def _retire(self, old: ServiceRelease, what: str) -> None:
        self._say(old.name, f"{what} ({', '.join(c.name for c in old.containers)})")
        for container in old.containers:
            self._before_stop(old, container)
            containers.stop_and_remove(container.id, timeout=old.stop_timeout)

    def _before_stop(self, old: ServiceRelease, container: Container) -> None:
        """Its pre_stop hooks: the previous release's as it recorded them, or, for what this
        deployment started (a rollback), its own compose file's."""
        if old.started_by == self.deployment_id:
            own = next((spec.pre_stop for spec in self.project.services if spec.name == old.name), ())
        else:
            own = self.pre_stop.get(old.name, ())
        hooks.run_pre_stop(own, service=old.name, container_id=container.id, grace_seconds=old.stop_timeout,
                           say=self.log.write)

    def _same_image(self, old: ServiceRelease, spec: ServiceSpec, image_id: str) -> bool:
        """The same ID, or built from the same files and bases (images.built_from): a database
        must not restart because a build cache gave the same files a new ID. The running image's
        value is computed again while Docker has it: the one recorded may be of an older formula."""
        if old.image_id == image_id:
            return True
        built_from = (images.built_from(old.image_id) if old.built_from else "") or old.built_from
        return bool(built_from and built_from == self._built_from(spec))

    def _built_from(self, spec: ServiceSpec) -> str:
        return "" if spec.image else images.built_from(self.images[spec.name])  # a pulled image's label is not ours

    @staticmethod
    def _running(release: ServiceRelease) -> bool:
        return all(containers.state(container.id).running for container in release.containers)

    def _definition(self, spec: ServiceSpec) -> str:
        return definition(spec, environment_of(spec, self.environment), self.limits)

    def _say(self, name: str, text: str) -> None:
        self.log.write(f"[{name}] {text}")


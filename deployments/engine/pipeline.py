"""The deploy state machine: fetch → build → start → verify → [canary] → switch → watch → drain.

Before the switch nothing the old release depends on is touched, so any failure there
removes the new containers and leaves the old release serving. The switch is one map
commit in HAProxy. During the watch the old release stays ready (and sits in the new
backend as HAProxy backup servers); trouble switches the map back at once. After a clean
watch the old release drains and is retired.
With zero_downtime off the old release is stopped before the new one starts (recreate);
if the new one then fails, the old containers are started again.

A release is a set of services (compose/project.py): a single-Dockerfile app is a project of
one web service. The web service goes through the phases above; a Compose app's other
services are started and replaced around it by engine/companions.py.

A canary or a watch takes minutes of polling, and a deploy worker has a few slots that builds
need. So when one follows, the task that ran the deployment up to verify hands it over: a task
on the watch queue (settings.WATCH_QUEUE, its own worker) carries on from the row (resume):
the release's project, images, containers and services, and the traffic baseline are stored
there; the new release is confirmed UP once more, and the phases go on from the canary or the
switch. Before the switch nothing changed for the old release, so a hand-over that goes wrong
(the task lost, or waiting for a watch slot longer than the heartbeat timeout) ends as any
failure before the switch does.
"""
import gc
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from deployments.compose.file import MAX_FILE_BYTES, load
from deployments.compose.project import ComposeError, Project, ServiceSpec, single_service
from deployments.engine import health, lifecycle, priority, release_command
from deployments.git import source
from deployments.dockerfile import build_context, check
from deployments.dockerd import builds, containers, daemon, images, output
from deployments.dockerd.values import LABEL_APP, LABEL_APP_ID
from deployments.engine.canary import Canary, CanaryFailed
from deployments.engine.companions import Companions, environment_of, run_options

from deployments.haproxy import stats
from deployments.dockerd.values import Container
from deployments.engine.logs import DeploymentLog, append
from deployments.models import App, Deployment
from deployments.traffic.table import MAX_REPLICAS
from deployments.masking import without_password
from deployments.traffic import changes, readings

HAPROXY_UP_GRACE = 10.0  # HAProxy's own check runs every second; allow a few rounds
UP_POLL_INTERVAL = 0.02  # the switch follows HAProxy's "UP" by at most this plus a few ms
DRAIN_POLL_INTERVAL = 0.05
WATCH_INTERVAL = 0.1  # how often the watch looks; detection to rollback stays well under a second

logger = logging.getLogger(__name__)


class Cancelled(Exception):
    """Someone asked to cancel before the switch."""


class RolledBack(Exception):
    """The watch or the canary caught the new release misbehaving; traffic is back on the old one.
    `reason` is one word for /metrics: what caught it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _kind_of(trouble: str) -> str:
    """What the watch saw, in a word (see _trouble)."""
    if "DOWN" in trouble:
        return "health"
    if "5xx" in trouble:
        return "5xx"
    return "exited" if "exited" in trouble else "error"


class PhaseFailed(Exception):
    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase} failed: {reason}")
        self.phase = phase


HandOff = Callable[[int, str], bool]  # (deployment id, runner): True once the task that carries on is sent


def run(deployment_id: int, runner: str = "", hand_off: HandOff | None = None) -> int | None:
    """Entry point of the Celery task (`runner`: its id): claim and run. Returns the app's id
    once the deployment has ended (the task then hands over the next queued ones), or None if it
    could not be claimed (another deployment of the app, or as many of its owner's as one user
    may run, runs and hands over when it ends) or was handed off after verify (`hand_off` sends
    the task that carries on, see resume)."""
    if not lifecycle.claim(deployment_id, runner=runner):
        _say_why_it_waits(deployment_id)
        return None
    return _execute(deployment_id, hand_off=(lambda: hand_off(deployment_id, runner)) if hand_off else None)


def resume(deployment_id: int, handed_by: str, runner: str) -> int | None:
    """Entry point of the task on the watch queue (`runner`: its id) that carries on a deployment
    task `handed_by` ran up to verify. Returns the app's id once it has ended, or None if it had
    ended meanwhile (reconcile ended it; the next queued deployment is then reconcile's to send)."""
    if not lifecycle.take_over(deployment_id, handed_by, runner):
        return None
    return _execute(deployment_id, resumed=True)


def _execute(deployment_id: int, **how) -> int | None:
    deployment = Deployment.objects.select_related("app", "previous").get(id=deployment_id)
    try:
        pipeline = Pipeline(deployment)
    except Exception as error:  # e.g. env vars that no longer decrypt: end it, never leave it running
        logger.exception("deployment %s could not start", deployment_id)
        lifecycle.finish(deployment_id, Deployment.State.FAILED, f"start-up failed: internal error: {error}")
        append(deployment_id, f"Deployment failed before its first phase: {error}")
        return deployment.app_id
    with priority.raised():
        ended = pipeline.execute(**how)
    return deployment.app_id if ended else None


def _say_why_it_waits(deployment_id: int) -> None:
    deployment = Deployment.objects.select_related("app__owner").filter(id=deployment_id).first()
    if deployment is None or deployment.state != Deployment.State.QUEUED:
        return
    if lifecycle.owner_at_limit(deployment.app.owner_id):
        limit = settings.SWITCHYARD["MAX_CONCURRENT_DEPLOYS_PER_USER"]
        append(deployment_id, f"Waiting: {deployment.app.owner} already runs {limit} deployment(s), as many as one "
                              "user may at once; this one starts when one of them ends")


class Pipeline:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.app: App = deployment.app
        self.previous: Deployment | None = deployment.previous
        if self.previous is not None:
            self.previous.app = self.app  # one App object: what either goes live as is seen by both
        self.environment = self.app.environment()
        self.log = DeploymentLog(deployment.id, secrets=list(self.environment.values()))
        self._stopped_previous = False
        self._switched = False  # from here on the new release serves: undoing means rolling back
        self._healthy_at = 0.0  # monotonic time HAProxy reported the new servers UP
        self._old_colour = self.app.live_colour
        self._recreate = not self.app.zero_downtime
        self.project: Project | None = None  # known once the source is (after fetch, or a redeploy's)
        self.images: dict[str, str] = {}  # service → image tag
        self.checked: dict[str, tuple[check.Checked, str]] = {}  # service → its checked Dockerfile, build target
        self.companions: Companions | None = None
        self.canary: Canary | None = None
        self._switch_ms: float | None = None
        self._traffic_before: dict[str, stats.Responses] | None = None
        self._canary_slots_before: stats.Responses | None = None

    def execute(self, hand_off: Callable[[], bool] | None = None, resumed: bool = False) -> bool:
        """Runs the phases and ends the deployment: True. False if it was handed off after verify
        (hand_off sent the task that carries on: that one ends it). resumed: this is that task."""
        heartbeat = _Heartbeat(self.deployment.id)
        heartbeat.start()
        try:
            if resumed:
                self._resume()
            else:
                self._traffic_before = self._backend_responses()
                self._canary_slots_before = self._canary_slot_responses()
                self._up_to_verify()
                if hand_off is not None and self._hand_off_applies() and self._handed_off(hand_off):
                    return False
            self._from_verify()
            self._finish(Deployment.State.SUCCEEDED, "")
        except RolledBack as rollback:
            self._finish(Deployment.State.ROLLED_BACK, str(rollback), rollback_reason=rollback.reason)
        except PhaseFailed as failure:
            if self._switched:  # a drain step (a new worker, say) failed: the new web release serves
                self._finish(*self._recover_after_switch(str(failure)))
            else:
                self._undo_before_switch()
                self._finish(Deployment.State.FAILED, str(failure))
        except Cancelled:
            self._undo_before_switch()
            who = Deployment.objects.values_list("cancelled_by", flat=True).get(pk=self.deployment.pk)
            self._finish(Deployment.State.CANCELLED, f"cancelled by {who or 'a user'} during {self.deployment.phase}")
        except Exception as error:  # a bug or an unreachable service: still leave things clean
            logger.exception("deployment %s crashed", self.deployment.id)
            reason = f"{self.deployment.phase or 'start-up'} failed: internal error: {error}"
            if self._switched:
                self._finish(*self._recover_after_switch(reason))
            else:
                self._undo_before_switch()
                self._finish(Deployment.State.FAILED, reason)
        finally:
            heartbeat.stop()
        return True

    def _up_to_verify(self) -> None:
        self.log.write(f"Deploying {self.app.name} from {without_password(self.app.repo_url)} ref {self.deployment.ref} "
                       f"({'zero-downtime' if self.app.zero_downtime else 'recreate: a short 503 gap'})")
        self.log.write(f"Worker process {os.getpid()} on {socket.gethostname()}")
        if self.deployment.redeploy_of_id:
            self.log.write(f"Redeploying {self.deployment.image} of deployment #{self.deployment.redeploy_of_id} "
                           f"({self.deployment.short_sha}): no fetch, no build")
        else:
            with self._phase("fetch"):
                self._fetch()
                self._load_project()
            with self._phase("build"):
                self._build()
        with self._phase("start"):
            if self.deployment.redeploy_of_id:
                self._load_project()
                self.images = self._redeploy_images()
            for image in self.images.values():
                if not images.image_exists(image):  # a redeploy's, removed by hand meanwhile
                    raise daemon.RuntimeFailure(f"the image {image} is gone; deploy its commit instead")
            self._start_companions()
            self._run_release_commands()
            if self._recreate:
                self._stop_previous()
            self._start()
        with self._phase("verify"):
            self._verify()

    def _hand_off_applies(self) -> bool:
        return self._canary_applies() or self._watch_applies()

    def _handed_off(self, send: Callable[[], bool]) -> bool:
        """A canary or a watch follows: a task on the watch queue carries on (resume) and this
        worker's slot is free for a build. What that task needs and memory alone had is stored
        first. True once it is sent; if the queue is unreachable, this task carries on."""
        self._leave_hot_path()
        self._save(phase_times=self.deployment.phase_times, traffic_baseline=self._baseline(),
                   heartbeat_at=timezone.now())
        self.log.write("Verified; a watch worker carries on (the deploy worker's slot is free for builds)")
        self.log.flush()
        if send():
            return True
        self.log.write("The watch queue (Redis) is unreachable: this worker carries on")
        self._wait_for_haproxy_up(time.monotonic() + HAPROXY_UP_GRACE)
        return False

    def _resume(self) -> None:
        """In the task that carries on after verify: what the phases up to it kept in memory,
        from the row; then the new release must still be UP in HAProxy."""
        self.log.write(f"Worker process {os.getpid()} on {socket.gethostname()} carries on after verify (watch queue)")
        self._load_project(quiet=True)
        self.images = (self._redeploy_images() if self.deployment.redeploy_of_id else
                       {spec.name: self._image_tag(spec) for spec in self.project.services})
        self.companions = self._companions()
        self.companions.take_over(self.deployment.services)
        self._traffic_before, self._canary_slots_before = _from_baseline(self.deployment.traffic_baseline)
        self._wait_for_haproxy_up(time.monotonic() + HAPROXY_UP_GRACE)

    def _from_verify(self) -> None:
        if self._canary_applies():
            self._leave_hot_path()  # the switch waits for the canary's verdict
            with self._phase("canary"):
                self._run_canary()
            self._healthy_at = time.monotonic()  # the switch is measured from the canary's verdict
            self._enter_hot_path()
        with self._phase("switch"):
            self._switch()
        if self.canary is not None:
            self.canary.withdraw()  # a rollback in the watch must find the old backend as it was
        if self._watch_applies():
            with self._phase("watch"):
                self._watch()
        with self._phase("drain"):
            self._drain()

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        # Entering a phase is a conditional UPDATE against the cancel flag, and cancelling is a
        # conditional UPDATE against the phase: whichever comes first wins, never both. The same
        # UPDATE stores the previous phase's end: between verify and switch there is one write.
        times = {**self.deployment.phase_times, name: {"start": timezone.now().isoformat()}}
        if not lifecycle.enter_phase(self.deployment.pk, name, times):
            aborted = lifecycle.aborted_by(self.deployment.pk)
            if aborted is not None:  # pressed as the canary's last step ended
                self._undo_before_switch()
                raise RolledBack(f"canary: aborted by {aborted or 'a user'}; traffic is back on deployment "
                                 f"#{self.previous.id}", "aborted")
            raise Cancelled()
        if settings.SWITCHYARD["FAULT_PAUSE"]:
            time.sleep(settings.SWITCHYARD["FAULT_PAUSE"])
        self.deployment.phase, self.deployment.phase_times = name, times
        self._publish_state()
        self.log.write(f"==> {name}")
        try:
            yield
        except (PhaseFailed, Cancelled):
            raise
        except (source.SourceError, check.Refused, builds.BuildFailed, daemon.RuntimeFailure, ComposeError,
                health.HealthCheckFailed, health.ContainerExited) as error:
            raise PhaseFailed(name, str(error)) from error
        finally:  # stored by the next phase's UPDATE, or by _finish
            times = {**self.deployment.phase_times}
            times[name] = {**times[name], "end": timezone.now().isoformat()}
            self.deployment.phase_times = times
        self.log.write(f"    {name} done in {self.deployment.phase_duration(name):.2f}s")

    def _fetch(self) -> None:
        pinned = self.deployment.commit_sha  # a webhook deploys exactly the pushed commit
        access = source.Access(private_key=self.app.deploy_private_key, allow_private=self.app.repo_private_allowed,
                               known_hosts=source.known_hosts(self.app.name))
        sha = source.fetch(self.app.name, self.app.repo_url, pinned or self.deployment.ref, access)
        self._save(commit_sha=sha)
        self.log.write(f"Pushed commit {sha} on {self.deployment.ref}" if pinned else f"{self.deployment.ref} is commit {sha}")
        if self.app.compose_file:
            self._save(compose_text=source.read_file(self.app.name, sha, self.app.compose_file, MAX_FILE_BYTES))

    def _load_project(self, quiet: bool = False) -> None:
        """The release's services: from the compose file at the commit, or the app's one Dockerfile.
        A web service that cannot run twice at once is deployed by recreate, and the log says why
        (quiet: not again, in the task that carries on after verify)."""
        say = (lambda text: None) if quiet else self.log.write
        if self.deployment.compose_text:
            self.project = load(self.deployment.compose_text, self.app.web_service, self.environment,
                                default_replicas=self.app.replicas)
            say(f"{self.app.compose_file}: services " + ", ".join(
                f"{s.name} ({s.role.value}{f', {s.replicas} replicas' if s.replicas > 1 else ''})"
                for s in self.project.services))
        else:
            self.project = single_service(self.app.dockerfile, self.app.replicas)
        # Ceilings are checked again here: a Compose file's containers are known only now, and the
        # administrator may have lowered a ceiling since the app's limits were set (not again past
        # verify). What the release starts with is recorded: its owner's totals count it from now.
        if not quiet and (problem := lifecycle.reserve_release(self.deployment,
                                                              sum(s.replicas for s in self.project.services))):
            raise PhaseFailed(self.deployment.phase, problem)
        reasons = self.project.web.recreate_reasons()
        if reasons and not self._recreate:
            self._recreate = True
            say(f"Recreate instead of zero-downtime: service {self.project.web.name}: {'; '.join(reasons)}")

    def _redeploy_images(self) -> dict[str, str]:
        """The images of the release redeployed, one per service of its compose file."""
        images = {service.name: service.image for service in self.deployment.redeploy_of.services}
        images[self.project.web.name] = self.deployment.image
        missing = [spec.name for spec in self.project.services if spec.name not in images]
        if missing:
            raise daemon.RuntimeFailure(f"deployment #{self.deployment.redeploy_of_id} has no image of "
                                        f"{', '.join(missing)}; deploy its commit instead")
        return images

    def _build(self) -> None:
        """Every service's Dockerfile is checked before the first build starts (dockerfile/check.py)."""
        for spec in self.project.services:
            self._check_dockerfile(spec)
        for spec in self.project.services:
            self.images[spec.name] = self._build_service(spec)
        self._save(image=self.images[self.project.web.name])

    def _check_dockerfile(self, spec: ServiceSpec) -> None:
        """The service's Dockerfile checked, and the canonical one the build will use kept for it."""
        prefix = f"[{spec.name}] " if self.deployment.compose_text else ""
        with source.archive(self.app.name, self.deployment.commit_sha, spec.build_context) as context:
            text = build_context.dockerfile_from_context(context, spec.dockerfile)
        owner = check.Owner(app=self.app.name, app_id=self.app.id, instance=settings.SWITCHYARD["INSTANCE"])
        try:
            checked = check.check(text, owner=owner, build_args=dict(spec.build_args),
                                  inspect=images.image_facts, pull=self._pull,
                                  registries=settings.SWITCHYARD["PULL_REGISTRIES"])
            self.checked[spec.name] = (checked, checked.target(spec.build_target))
        except check.Refused as refused:
            raise check.Refused(f"{prefix}{spec.dockerfile}: {refused}") from None
        except builds.BuildFailed as failed:  # a pull past its deadline or size
            raise builds.BuildFailed(f"{prefix}{spec.dockerfile}: {failed}") from None
        except builds.BuildStopped:
            raise Cancelled() from None
        self.log.write(f"{prefix}{spec.dockerfile} checked: no remote ADD; images used: "
                       f"{', '.join(checked.images) or 'none'}")

    def _pull(self, reference: str) -> bool:
        """A base image the check needs, pulled within the build's own timeout and cancel."""
        return images.pull_image(reference, should_stop=self._cancel_requested_in_thread,
                                 timeout=self.app.build_timeout)

    def _image_tag(self, spec: ServiceSpec) -> str:
        return f"{self.app.service_image_repository(spec.name)}:{self.deployment.commit_sha[:12]}"

    def _build_service(self, spec: ServiceSpec) -> str:
        tag = self._image_tag(spec)
        prefix = f"[{spec.name}] " if self.deployment.compose_text else ""
        try:
            checked, target = self.checked[spec.name]
            with source.archive(self.app.name, self.deployment.commit_sha, spec.build_context) as context:
                dockerfile = build_context.add_checked_dockerfile(context, checked.dockerfile)  # built instead of the tenant's
                labels = {LABEL_APP: self.app.name, LABEL_APP_ID: str(self.app.id)}
                builds.build_image(context, tag, dockerfile, labels,
                                   lambda line: self.log.output(prefix + line),
                                   should_stop=self._cancel_requested_in_thread, timeout=self.app.build_timeout,
                                   build_args=dict(spec.build_args), target=target)
        except builds.BuildStopped:
            raise Cancelled() from None
        self.log.write(f"{prefix}Built {tag}")
        return tag

    def _start_companions(self) -> None:
        """A Compose app's stateful services, then whatever the web service waits for."""
        self.companions = self._companions()
        self.companions.start_stateful()
        self.companions.wait_for_dependencies(self.project.web)

    def _companions(self) -> Companions:
        previous = self.previous.services if self.previous else []
        return Companions(self.app.name, self.app.id, self.deployment.id, self.project, self.images, previous,
                          self.environment, self._limits(quiet=True), self.log,
                          record=lambda services: self._save(services=services),
                          deadline_seconds=self.app.health_deadline)

    def _run_release_commands(self) -> None:
        try:
            release_command.run_all(self.app.name, self.app.id, self.deployment.id, self.project,
                                    self.app.release_command, self.images, self.environment, self._limits(quiet=True),
                                    self.log, compose=bool(self.deployment.compose_text),
                                    should_stop=self._cancel_requested_in_thread)
        except release_command.ReleaseCommandStopped:
            raise Cancelled() from None

    def _start(self) -> None:
        colour = self.app.idle_colour
        self._save(colour=colour)
        limits = self._limits()
        web = self.project.web
        options = run_options(self.app.name, self.app.id, web)
        for index in range(web.replicas):
            container = containers.start_release_container(self.app.name, str(self.deployment.id), index,
                                                           self.deployment.image, self.app.port,
                                                           environment_of(web, self.environment), limits, options,
                                                           fixed_name=web.container_name)
            self._save(containers=[*self.deployment.containers, container])
            self._say_web(f"Started {container.name} at {container.ip}:{container.port} ({colour})")

    def _web_stop_timeout(self) -> int:
        """A Compose web service's stop_grace_period, else the app's stop timeout."""
        return self.project.web.stop_grace_period if self.deployment.compose_text else self.app.stop_timeout

    def _say_web(self, text: str) -> None:
        """A line about the web service's release; in a Compose app it names the service, as the
        other services' lines do."""
        self.log.write(f"[{self.project.web.name}] {text}" if self.deployment.compose_text else text)

    def _limits(self, quiet: bool = False) -> containers.ContainerLimits:
        limits = containers.ContainerLimits(memory_mb=self.app.memory_limit_mb, cpus=self.app.cpu_limit,
                                            pids=self.app.pids_limit, capabilities=tuple(self.app.capabilities.split()))
        if not quiet:
            self.log.write(f"Limits per container: {limits.memory_mb} MiB memory, {limits.cpus:g} CPU, {limits.pids} "
                       f"processes; capabilities given back: {' '.join(limits.capabilities) or 'none'}")
        return limits

    def _verify(self) -> None:
        deadline = time.monotonic() + self.app.health_deadline
        for container in self.deployment.containers:
            self._verify_container(container, deadline)
        changes.publish_servers(self.deployment)
        if self._watch_applies():  # ready before the switch, so the switch itself is one map commit
            changes.publish_backups(self.deployment)
        self._wait_for_haproxy_up(max(deadline, time.monotonic() + HAPROXY_UP_GRACE))

    def _verify_container(self, container: Container, deadline: float) -> None:
        def alive() -> bool:
            self._raise_if_cancelled()
            return containers.state(container.id).running

        check = self.deployment.health_check
        try:
            health.wait_for_port(container.ip, container.port, deadline, alive)
            self._say_web(f"{container.name}: port {container.port} open")
            health.wait_for_status(container.ip, container.port, check["path"], check["host"],
                                   check["status"], check["timeout"], deadline, alive)
            self._say_web(f"{container.name}: GET {check['path']} answered {check['status']}")
            if self.project.web.healthcheck:  # the compose file's own check gates the switch too
                health.wait_for_docker_health(container.name, lambda: containers.state(container.id).health, deadline,
                                              alive)
                self._say_web(f"{container.name}: healthcheck passed (Docker reports healthy)")
        except health.ContainerExited:
            raise PhaseFailed("verify", self._exit_report(container)) from None

    def _exit_report(self, container: Container) -> str:
        exited = containers.state(container.id)
        last_output = output.tail(container.id) or "(no output)"
        self.log.write(f"Last output of {container.name}:\n{last_output}")
        return f"container {container.name} exited with code {exited.exit_code}; last output:\n{last_output}"

    def _wait_for_haproxy_up(self, deadline: float) -> None:
        wanted = len(self.deployment.containers)
        while True:
            servers = readings.servers(self.app, self.deployment.colour, wanted)
            if all(server.checked_up for server in servers):
                self._healthy_at = time.monotonic()
                self._enter_hot_path()
                self._say_web(f"HAProxy reports {wanted} server(s) UP in {self.app.backend_name(self.deployment.colour)}")
                return
            self._raise_if_cancelled()
            if time.monotonic() >= deadline:
                seen = ", ".join(server.describe() for server in servers)
                raise PhaseFailed("verify", f"HAProxy's health check did not report the new servers UP: {seen}")
            time.sleep(UP_POLL_INTERVAL)

    def _enter_hot_path(self) -> None:
        """From "the new release is healthy" (or "broken") until HAProxy routes accordingly,
        nothing may wait: log lines and state messages stay in memory, and no garbage
        collection pass may start (a full one takes ~50 ms in a process with Django, Celery
        and the Docker SDK loaded, measured here)."""
        self.log.hold()
        gc.disable()

    def _leave_hot_path(self) -> None:
        gc.enable()
        self.log.release()

    def _switch(self) -> None:
        # Nothing between HAProxy's UP and this commit but the phase bookkeeping: every
        # millisecond here is a request the old release answers although the new one is ready.
        try:
            routed_at = changes.switch_to(self.deployment)
        finally:
            self._leave_hot_path()
        switched_after_ms = self._switch_ms = (routed_at - self._healthy_at) * 1000
        self._switched = True
        self._say_web(f"Traffic for {', '.join(self.app.hostnames())} now goes to {self.deployment.colour}, "
                       f"{switched_after_ms:.1f} ms after HAProxy reported it UP")
        # Restarts only from here: a crash before the switch shows as an exit code, not a restart loop.
        for container in self.deployment.containers:
            containers.enable_restarts(container.id, self.project.web.restart)

    def _canary_applies(self) -> bool:
        return bool(self.app.canary_steps and self.previous and self.previous.containers and not self._recreate)

    def _run_canary(self) -> None:
        restarts = self._restarts()
        self.canary = Canary(self.deployment, self.previous, self.log, self._say_web,
                             broken=lambda: self._broken(restarts))
        try:
            self.canary.run()
            lifecycle.consume_promote(self.deployment.pk)  # a Promote as the last step ended: not the watch's
        except CanaryFailed as failure:
            self._undo_before_switch()
            raise RolledBack(f"{failure}; traffic is back on deployment #{self.previous.id}", failure.kind) from None

    def _watch_applies(self) -> bool:
        return bool(self.app.watch_window and self.previous and self.previous.containers and not self._stopped_previous)

    def _watch(self) -> None:
        """Until the window ends (or someone promotes): HAProxy's health of the new servers,
        the 5xx ratio of their answers, and their containers. Any trouble: roll back."""
        window = self.app.watch_window
        self._save(watch_until=timezone.now() + timezone.timedelta(seconds=window))
        self._say_web(f"Watching the new release for {window}s; the old one stays ready")
        baseline = self._answered()
        restarts = self._restarts()
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            trouble = self._trouble(baseline, restarts)
            if trouble:
                self._roll_back(trouble)
            if self._promoted():
                break
            time.sleep(WATCH_INTERVAL)
        changes.withdraw_backups(self.deployment)
        since = self._answered().since(baseline)
        self._say_web(f"Watch passed: {since.total} responses, {since.errors} 5xx")

    def _trouble(self, baseline: stats.Responses, restarts: dict[str, int]) -> str:
        """Why the new release must be rolled back, or "" if it is fine."""
        broken = self._broken(restarts)
        if broken:
            return broken
        since = self._answered().since(baseline)
        limit = self.app.watch_error_percent
        if since.total >= self.app.watch_min_requests and since.error_percent > limit:
            return f"{since.errors} of {since.total} responses were 5xx ({since.error_percent:.1f}% > {limit:g}%)"
        return ""

    def _restarts(self) -> dict[str, int]:
        return {c.id: containers.state(c.id).restarts for c in self.deployment.containers}

    def _broken(self, restarts: dict[str, int]) -> str:
        """HAProxy marked a new server DOWN, or a new container exited or restarted since
        `restarts` was read; "" if neither."""
        servers = readings.servers(self.app, self.deployment.colour, len(self.deployment.containers))
        down = [server.describe() for server in servers if server.down]
        if down:
            return f"HAProxy's health check marked the new release DOWN: {', '.join(down)}"
        for container in self.deployment.containers:
            state = containers.state(container.id)
            if not state.running or state.restarts > restarts[container.id]:
                return f"container {container.name} exited (code {state.exit_code})"
        return ""

    def _answered(self) -> stats.Responses:
        return stats.answered(readings.servers(self.app, self.deployment.colour, len(self.deployment.containers)))

    def _promoted(self) -> bool:
        promoted = lifecycle.promoted_by(self.deployment.pk)
        if promoted is not None:
            self.log.write(f"Promoted by {promoted or 'a user'}: the rest of the watch is skipped")
        return promoted is not None

    def _roll_back(self, reason: str) -> None:
        """Map back to the old release in one runtime operation (file and rows right after),
        then remove the new one."""
        detected = time.monotonic()
        self._enter_hot_path()
        try:
            routed_at = changes.switch_to(self.previous)
        finally:
            self._leave_hot_path()
        self.log.write(f"Rolled back in {(routed_at - detected) * 1000:.0f} ms: {reason}")
        changes.withdraw_backups(self.deployment)
        changes.withdraw_servers(self.deployment)
        for container in self.deployment.containers:
            containers.stop_and_remove(container.id, timeout=self._web_stop_timeout())
        self.companions.undo()  # a stateful service this release replaced: the old one is back
        if self.canary is not None:
            self.canary.mark_rolled_back()
        raise RolledBack(f"watch: {reason}; traffic is back on deployment #{self.previous.id}", _kind_of(reason))

    def _drain(self) -> None:
        self.companions.replace_workers()
        if self.previous is None:
            self.log.write("No previous release to retire")
        elif self._stopped_previous:
            for container in self.previous.containers:
                containers.stop_and_remove(container.id, timeout=0)
            self.log.write(f"Removed the previous release (deployment #{self.previous.id})")
        else:
            self._take_out_of_service(self.previous)
            for container in self.previous.containers:
                containers.stop_and_remove(container.id, timeout=self._web_stop_timeout())
            changes.close_sessions(self.previous)  # what its process left open, if anything
            self._say_web(f"Retired the previous release (deployment #{self.previous.id}, {self.previous.short_sha})")
        self.companions.retire_replaced()
        self._prune_images()

    def _take_out_of_service(self, old: Deployment) -> None:
        """Maintenance first (no new requests), then let the requests waiting for an answer
        finish, up to the drain timeout; only what is still waiting after that is cut.
        Long-lived streams (WebSockets, event streams) are not waited for: the old release
        gets SIGTERM next and closes them (docs/deployments.md, "Long-lived connections"), and each client
        that reconnects lands on the new release."""
        changes.withdraw_servers(old)
        timeout = settings.SWITCHYARD["DRAIN_TIMEOUT"]
        deadline = time.monotonic() + timeout
        while (open_ := readings.open_streams(old)).waiting and time.monotonic() < deadline:
            time.sleep(DRAIN_POLL_INTERVAL)
        if open_.waiting:
            self.log.write(f"Drain timeout ({timeout}s): closing {open_.waiting} request(s) still open on the old release")
            changes.close_sessions(old)
        elif open_.long_lived:
            self.log.write(f"No requests in flight; {open_.long_lived} long-lived connection(s) (WebSocket, "
                           "streamed response) stay open until the old release stops")
        else:
            self.log.write("The old release has no requests in flight")

    def _stop_previous(self) -> None:
        """Recreate: the old release stops before the new one starts; kept stopped, not
        removed, so it can be started again if the new release fails."""
        if self.previous is None:
            return
        self.log.write("Recreate: stopping the running release first; HAProxy answers 503 until the new one is up")
        self._take_out_of_service(self.previous)
        for container in self.previous.containers:
            containers.stop(container.id, timeout=self._web_stop_timeout())
            if self.project.web.container_name:  # the new one takes the name
                containers.set_aside(container, str(self.deployment.id))
        changes.close_sessions(self.previous)
        self._stopped_previous = True

    def _recover_after_switch(self, reason: str) -> tuple[str, str]:
        """During the watch the old release still runs: go back to it. During the drain the
        new release is live and fine: keep it; reconcile removes what the drain left."""
        if self.deployment.phase == "watch":
            try:
                self._roll_back(reason)
            except RolledBack as rollback:
                return Deployment.State.ROLLED_BACK, str(rollback)
            except Exception as error:
                return Deployment.State.FAILED, f"{reason}; rolling back failed too: {error}"
        self.log.write("The new release is live; reconcile will remove what the drain left behind")
        return Deployment.State.FAILED, reason

    def _undo_before_switch(self) -> None:
        """Remove what this deployment started; in a recreate, bring the old release back. The
        other services first: the old web release needs its stateful services back."""
        try:
            if self.companions is not None:
                self.companions.undo()
        except Exception as error:
            logger.exception("clean-up of deployment %s's services incomplete", self.deployment.id)
            self.log.write(f"Clean-up of the services incomplete ({error}); reconcile will finish it")
        try:
            if self.canary is not None:  # whatever the row says: HAProxy may not have taken the last change
                self.canary.withdraw()
            if self.deployment.serves_backup:
                changes.withdraw_backups(self.deployment)
            if self.deployment.holds_backend:
                changes.withdraw_servers(self.deployment)
            for container in self.deployment.containers:
                containers.stop_and_remove(container.id, timeout=0)
            if self._stopped_previous and self.previous is not None:
                self._restart_previous()
        except Exception as error:
            logger.exception("clean-up of deployment %s incomplete", self.deployment.id)
            self.log.write(f"Clean-up incomplete ({error}); reconcile will finish it")

    def _restart_previous(self) -> None:
        lifecycle.record_containers(self.previous, [containers.bring_back(c) for c in self.previous.containers])
        changes.publish_servers(self.previous)
        self.log.write("The previous release was started again and serves traffic")

    def _prune_images(self) -> None:
        kept = self.app.kept_service_images(self.app.kept_images(newest=self.deployment.image))
        removed = images.remove_images(t for t in images.app_images(self.app.image_repository()) if t not in kept)
        if removed:
            self.log.write(f"Removed old images: {', '.join(removed)}")

    def _cancel_requested(self) -> bool:
        return lifecycle.cancel_requested(self.deployment.pk)

    def _cancel_requested_in_thread(self) -> bool:
        """For the build watcher's thread, which must not keep a database connection open."""
        try:
            return self._cancel_requested()
        finally:
            connection.close()

    def _raise_if_cancelled(self) -> None:
        if self._cancel_requested():
            raise Cancelled()

    def _backend_responses(self) -> dict[str, stats.Responses] | None:
        try:
            return readings.backend_responses(self.app)
        except Exception:  # HAProxy down: the deployment still runs, without traffic numbers
            return None

    def _traffic(self) -> dict:
        """Requests each release's backend answered during this deployment, and 5xx among them."""
        after = self._backend_responses()
        if not after or not self._traffic_before:
            return {}
        old = after[self._old_colour].since(self._traffic_before[self._old_colour])
        new_colour = self.app.idle_colour_of(self._old_colour)
        new = after[new_colour].since(self._traffic_before[new_colour])
        canary_slots = self._canary_slot_responses()
        if self.canary is not None and canary_slots and self._canary_slots_before:
            # A canary's requests went through the old backend's c slots: they are the new release's.
            moved = canary_slots.since(self._canary_slots_before)
            old, new = stats.Responses(old.total - moved.total, old.errors - moved.errors), new + moved
        return {"old": {"requests": old.total, "failed": old.errors}, "new": {"requests": new.total, "failed": new.errors}}

    def _baseline(self) -> dict:
        """The traffic counters read at the start, for the row (see _from_baseline)."""
        slots = self._canary_slots_before
        return {"backends": {colour: [r.total, r.errors] for colour, r in (self._traffic_before or {}).items()},
                "canary_slots": [slots.total, slots.errors] if slots else None}

    def _canary_slot_responses(self) -> stats.Responses | None:
        try:
            return readings.canary_responses(self.app, self._old_colour, 0, MAX_REPLICAS)[1]
        except Exception:  # HAProxy down: the deployment still runs, without traffic numbers
            return None

    def _finish(self, state: str, error: str, rollback_reason: str = "") -> None:
        self._leave_hot_path()  # if a failure came between HAProxy's UP and the switch
        error = self.log.mask(error)  # a crash report can quote the app's output
        traffic = self._traffic()
        if state == Deployment.State.ROLLED_BACK and not rollback_reason:
            rollback_reason = "error"  # a failure during the watch that was not the release's answers
        lifecycle.finish(self.deployment.pk, state, error, traffic=traffic, phase_times=self.deployment.phase_times,
                         switch_ms=self._switch_ms, rollback_reason=rollback_reason)
        self.deployment.state, self.deployment.error, self.deployment.traffic = state, error, traffic
        self._publish_state()
        if traffic:
            total = traffic["old"]["requests"] + traffic["new"]["requests"]
            failed = traffic["old"]["failed"] + traffic["new"]["failed"]
            self.log.write(f"Traffic during this deployment: {total} requests, {failed} failed "
                           f"(old release {traffic['old']['requests']}, new {traffic['new']['requests']})")
        self.log.write(f"Deployment {state}" + (f": {error}" if error else ""))
        self.log.flush()

    def _save(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.deployment, name, value)
        Deployment.objects.filter(pk=self.deployment.pk).update(**fields)
        if {"phase", "watch_until"} & set(fields):
            self._publish_state()

    def _publish_state(self) -> None:
        self.log.send({"type": "deployment.state", "state": self.deployment.state,
                       "phase": self.deployment.phase, "error": self.deployment.error})


def _from_baseline(stored: dict) -> tuple[dict[str, stats.Responses] | None, stats.Responses | None]:
    backends = {colour: stats.Responses(*counts) for colour, counts in stored.get("backends", {}).items()}
    slots = stored.get("canary_slots")
    return backends or None, stats.Responses(*slots) if slots else None


class _Heartbeat:
    """Touches heartbeat_at while the deployment runs; reconcile fails deployments whose
    heartbeat stopped (their worker died)."""

    def __init__(self, deployment_id: int) -> None:
        self.deployment_id = deployment_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.SWITCHYARD["HEARTBEAT_INTERVAL"]):
                close_old_connections()
                Deployment.objects.filter(pk=self.deployment_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

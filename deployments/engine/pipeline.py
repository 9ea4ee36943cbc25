"""The order of a deployment's phases: fetch → build → start → verify → [canary] → switch →
watch → drain, and how a deployment ends when one of them fails. Each phase is a module of
engine/phases/ working on one DeploymentContext (phases/context.py); this module only says
which comes when, marks each (_phase), and ends the deployment (_finish). The deployment's state
is lifecycle.py's: this module asks it to claim, take over, enter a phase and finish, each a
conditional UPDATE that loses to a cancel or to reconcile.

Before the switch nothing the old release depends on is touched, so any failure there
removes the new containers and leaves the old release serving. The switch is one map
commit in HAProxy. During the watch the old release stays ready (and sits in the new
backend as HAProxy backup servers); trouble switches the map back at once. After a clean
watch the old release drains and is retired (engine/retire.py).
With zero_downtime off the old release is stopped before the new one starts (recreate);
if the new one then fails, the old containers are started again.

A release is a set of services (compose/project.py): a single-Dockerfile app is a project of
one web service. The web service goes through the phases above; a Compose app's other
services are started and replaced around it by engine/companions.py.

A canary or a watch takes minutes of polling, and a deploy worker has a few slots that builds
need. So when one follows, the task that ran the deployment up to verify (and the switch, unless
a canary comes first: the hand-over is not on the path to the new release serving) hands it
over: a task on the watch queue (settings.WATCH_QUEUE, its own worker) carries on from the row
(resume): the release's project, images, containers and services, the traffic baseline and the
switch's time are stored there; the new release is confirmed UP once more, and the phases go on
from the canary or the watch. A hand-over that goes wrong (the task lost, or waiting for a watch
slot longer than the heartbeat timeout) ends as a lost worker does at that point: before a
canary's switch as any failure before the switch; after the switch, the new release is kept
(reconcile.end_lost).
"""
import datetime
import logging
import os
import socket
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from django.conf import settings
from django.utils import timezone

from deployments.compose.project import ComposeError
from deployments.dockerd import builds, daemon
from deployments.dockerfile import check
from deployments.engine import health, lifecycle, priority
from deployments.engine.heartbeat import Heartbeat
from deployments.engine.logs import append
from deployments.engine.phases import build, drain, fetch, start, switch, traffic_counts, verify, watch
from deployments.engine.phases.context import Cancelled, DeploymentContext, PhaseFailed, RolledBack
from deployments.engine.phases.recreate import stop_previous
from deployments.engine.phases.rollback import recover_after_switch, undo_before_switch
from deployments.git import source
from deployments.masking import without_password
from deployments.models import Deployment

logger = logging.getLogger(__name__)

# What a phase may raise that ends the deployment as that phase's failure (the rest is a bug or
# an unreachable service: an internal error, see Pipeline.execute).
PHASE_ERRORS = (source.SourceError, check.Refused, builds.BuildFailed, daemon.RuntimeFailure, ComposeError,
                health.HealthCheckFailed, health.ContainerExited)

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
    """One deployment's run through the phases, over its context."""

    def __init__(self, deployment: Deployment) -> None:
        self.ctx = DeploymentContext(deployment)
        self.deployment = deployment
        self.log = self.ctx.log

    def execute(self, *, hand_off: Callable[[], bool] | None = None, resumed: bool = False) -> bool:
        """Runs the phases and ends the deployment: True. False if it was handed off after verify
        (hand_off sent the task that carries on: that one ends it). resumed: this is that task."""
        heartbeat = Heartbeat(self.deployment.id)
        heartbeat.start()
        try:
            if resumed:
                self._resume()
            else:
                traffic_counts.read_baseline(self.ctx)
                self._up_to_verify()
                if not self.ctx.canary_applies():
                    self._switch()  # on the hot path from HAProxy's UP: before any hand-off
                if hand_off is not None and self._hand_off_applies() and self._handed_off(hand_off):
                    return False
            self._from_verify()
            self._finish(Deployment.State.SUCCEEDED, "")
        except RolledBack as rollback:
            self._finish(Deployment.State.ROLLED_BACK, str(rollback), rollback_reason=rollback.reason)
        except PhaseFailed as failure:
            self._fail(str(failure))
        except Cancelled:
            undo_before_switch(self.ctx)
            who = Deployment.objects.values_list("cancelled_by", flat=True).get(pk=self.deployment.pk)
            self._finish(Deployment.State.CANCELLED, f"cancelled by {who or 'a user'} during {self.deployment.phase}")
        except Exception as error:  # a bug or an unreachable service: still leave things clean
            logger.exception("deployment %s crashed", self.deployment.id)
            self._fail(f"{self.deployment.phase or 'start-up'} failed: internal error: {error}")
        finally:
            heartbeat.stop()
        return True

    def _fail(self, reason: str) -> None:
        """After the switch the new web release serves (a drain step, a new worker say, failed):
        recovering is rolling back or keeping it. Before, undo what this deployment started."""
        if self.ctx.switched:
            self._finish(*recover_after_switch(self.ctx, reason))
        else:
            undo_before_switch(self.ctx)
            self._finish(Deployment.State.FAILED, reason)

    def _up_to_verify(self) -> None:
        ctx, deployment = self.ctx, self.deployment
        self.log.write(f"Deploying {ctx.app.name} from {without_password(ctx.app.repo_url)} ref {deployment.ref} "
                       f"({'zero-downtime' if ctx.app.zero_downtime else 'recreate: a short 503 gap'})")
        self.log.write(f"Worker process {os.getpid()} on {socket.gethostname()}")
        if deployment.redeploy_of_id:
            self.log.write(f"Redeploying {deployment.image} of deployment #{deployment.redeploy_of_id} "
                           f"({deployment.short_sha}): no fetch, no build")
        else:
            with self._phase("fetch"):
                fetch.fetch(ctx)
                fetch.load_project(ctx)
                verify.arm(ctx)
            with self._phase("build"):
                build.build(ctx)
        with self._phase("start"):
            if deployment.redeploy_of_id:
                fetch.load_project(ctx)
                verify.arm(ctx)
                ctx.images = fetch.redeploy_images(ctx)
            start.check_images(ctx)
            start.start_companions(ctx)
            start.run_release_commands(ctx)
            if ctx.recreate:
                stop_previous(ctx)
            start.start_web(ctx)
        with self._phase("verify"):
            verify.verify(self.ctx)

    def _hand_off_applies(self) -> bool:
        return self.ctx.canary_applies() or self.ctx.watch_applies()

    def _handed_off(self, send: Callable[[], bool]) -> bool:
        """A canary or a watch follows: a task on the watch queue carries on (resume) and this
        worker's slot is free for a build. What that task needs and memory alone had is stored
        first. True once it is sent; if the queue is unreachable, this task carries on."""
        ctx = self.ctx
        ctx.leave_hot_path()
        ctx.save(phase_times=self.deployment.phase_times, traffic_baseline=traffic_counts.stored_baseline(ctx),
                 switch_ms=ctx.switch_ms, heartbeat_at=timezone.now(), watch_baseline=self._watch_baseline())
        done = "Switched" if ctx.switched else "Verified"
        self.log.write(f"{done}; a watch worker carries on (the deploy worker's slot is free for builds)")
        self.log.flush()
        if send():
            return True
        self.log.write("The watch queue (Redis) is unreachable: this worker carries on")
        if not ctx.switched:  # the canary's verdict then the switch are measured from HAProxy's UP
            verify.wait_for_haproxy_up(ctx, deadline=time.monotonic() + verify.HAPROXY_UP_GRACE)
        return False

    def _watch_baseline(self) -> dict:
        """After the switch, the watch's baseline read now (watch.Baseline): the window starts at
        the switch, not once the watch worker has taken over. Empty otherwise, or if it cannot be
        read now (HAProxy or Docker away for a moment): the watch worker reads it then."""
        if not (self.ctx.switched and self.ctx.watch_applies()):
            return {}
        try:
            return watch.read_baseline(self.ctx).stored()
        except Exception:  # the watch worker reads it itself then, and fails there if it must
            logger.warning("deployment %s: the watch baseline is read by the watch worker", self.deployment.id,
                           exc_info=True)
            return {}

    def _resume(self) -> None:
        """In the task that carries on after verify (and the switch, unless a canary comes first):
        what the phases up to it kept in memory, from the row; then the new release must still be
        UP in HAProxy."""
        ctx, deployment = self.ctx, self.deployment
        ctx.switched = "end" in deployment.phase_times.get("switch", {})
        after = "the switch" if ctx.switched else "verify"
        self.log.write(f"Worker process {os.getpid()} on {socket.gethostname()} carries on after {after} (watch queue)")
        self.log.flush()  # which process it is: stored now, whatever happens to it next
        if ctx.switched:  # the app's live colour is the new release's now
            ctx.old_colour, ctx.switch_ms = ctx.app.idle_colour_of(deployment.colour), deployment.switch_ms
        fetch.load_project(ctx, quiet=True)
        ctx.images = (fetch.redeploy_images(ctx) if deployment.redeploy_of_id else
                      build.release_images(ctx))
        ctx.companions = start.companions(ctx)
        ctx.companions.take_over(deployment.services)
        traffic_counts.restore_baseline(ctx, deployment.traffic_baseline)
        verify.wait_for_haproxy_up(ctx, deadline=time.monotonic() + verify.HAPROXY_UP_GRACE)
        if ctx.switched:  # no switch to wait for: nothing holds the log or the garbage collector
            ctx.leave_hot_path()

    def _from_verify(self) -> None:
        ctx = self.ctx
        if ctx.canary_applies():
            ctx.leave_hot_path()  # the switch waits for the canary's verdict
            with self._phase("canary"):
                switch.run_canary(ctx)
            ctx.healthy_at = time.monotonic()  # the switch is measured from the canary's verdict
            ctx.enter_hot_path()
        if not ctx.switched:
            self._switch()
        if ctx.canary is not None:
            ctx.canary.withdraw()  # a rollback in the watch must find the old backend as it was
        if ctx.watch_applies():
            with self._phase("watch", started=watch.window_start(ctx)):
                watch.watch(ctx)
        with self._phase("drain"):
            drain.drain(ctx)

    def _switch(self) -> None:
        with self._phase("switch"):
            switch.switch(self.ctx)

    @contextmanager
    def _phase(self, name: str, started: datetime.datetime | None = None) -> Iterator[None]:
        # Entering a phase is a conditional UPDATE against the cancel flag, and cancelling is a
        # conditional UPDATE against the phase: whichever comes first wins, never both. The same
        # UPDATE stores the previous phase's end: between verify and switch there is one write.
        self._enter(name, started)
        try:
            yield
        except (PhaseFailed, Cancelled):
            raise
        except PHASE_ERRORS as error:
            raise PhaseFailed(name, str(error)) from error
        finally:  # stored by the next phase's UPDATE, or by _finish
            times = {**self.deployment.phase_times}
            times[name] = {**times[name], "end": timezone.now().isoformat()}
            self.deployment.phase_times = times
        self.log.write(f"    {name} done in {self.deployment.phase_duration(name):.2f}s")

    def _enter(self, name: str, started: datetime.datetime | None = None) -> None:
        """lifecycle.enter_phase, or why not: an Abort pressed as the canary's last step ended
        (rolled back), else a cancel. `started`: when the phase began, if before now (the watch)."""
        times = {**self.deployment.phase_times, name: {"start": (started or timezone.now()).isoformat()}}
        if not lifecycle.enter_phase(self.deployment.pk, name, times):
            aborted = lifecycle.aborted_by(self.deployment.pk)
            if aborted is not None:  # pressed as the canary's last step ended
                undo_before_switch(self.ctx)
                raise RolledBack(f"canary: aborted by {aborted or 'a user'}; traffic is back on deployment "
                                 f"#{self.ctx.previous.id}", "aborted")
            raise Cancelled()
        if settings.SWITCHYARD["FAULT_PAUSE"]:
            time.sleep(settings.SWITCHYARD["FAULT_PAUSE"])
        self.deployment.phase, self.deployment.phase_times = name, times
        self.ctx.publish_state()
        self.log.write(f"==> {name}")

    def _finish(self, state: str, error: str, *, rollback_reason: str = "") -> None:
        """lifecycle.finish with what this run measured, then the last lines of the log."""
        self.ctx.leave_hot_path()  # if a failure came between HAProxy's UP and the switch
        error = self.log.mask(error)  # a crash report can quote the app's output
        traffic = traffic_counts.traffic(self.ctx)
        if state == Deployment.State.ROLLED_BACK and not rollback_reason:
            rollback_reason = "error"  # a failure during the watch that was not the release's answers
        lifecycle.finish(self.deployment.pk, state, error, traffic=traffic, phase_times=self.deployment.phase_times,
                         switch_ms=self.ctx.switch_ms, rollback_reason=rollback_reason)
        self.deployment.state, self.deployment.error, self.deployment.traffic = state, error, traffic
        self.ctx.publish_state()
        if traffic:
            total = traffic["old"]["requests"] + traffic["new"]["requests"]
            failed = traffic["old"]["failed"] + traffic["new"]["failed"]
            self.log.write(f"Traffic during this deployment: {total} requests, {failed} failed "
                           f"(old release {traffic['old']['requests']}, new {traffic['new']['requests']})")
        self.log.write(f"Deployment {state}" + (f": {error}" if error else ""))
        self.log.flush()

"""A canary: after verify, the new release takes a growing share of the live traffic, step by
step, and each step compares it with the old release on the same window of traffic.

The new release's containers join the live backend's c slots (traffic/changes.py set_canary_share)
with server weights that give them the step's percentage; a cookie keeps each client on the
server it first got. A step is held app.canary_step_seconds. During it, and at its end, the new
release is compared with the old:
- 5xx ratio, from HAProxy's per-server counters (the s slots are the old release, the c slots
  the new): worse by more than app.canary_error_margin percentage points → roll back, at once,
  as soon as the new release answered app.canary_min_requests requests;
- p95 of the server response time, from HAProxy's latency ring (haproxy/latency.py): more than
  app.canary_latency_margin percent above the old's (and by more than CANARY_LATENCY_FLOOR_MS)
  at the step's end → roll back;
- a new server DOWN or a container that exited → roll back.
With fewer requests than canary_min_requests on the new release at a step's end there is
nothing to compare: the step says so and the canary goes on (an idle app still deploys).
The last step (100 %) is the ordinary switch; Promote skips the remaining steps, Abort rolls back.
"""
import time
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.utils import timezone

from deployments.engine import lifecycle
from deployments.engine.logs import DeploymentLog
from deployments.haproxy import stats
from deployments.haproxy.latency import LatencyFollower
from deployments.models import App, Deployment
from deployments.traffic import changes, readings, target

POLL_SECONDS = 0.25


class CanaryFailed(Exception):
    """The new release was worse (or aborted); the old release has all the traffic again.
    kind: canary-5xx, canary-p95, canary-health, canary-exited or aborted (for /metrics)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Figures:
    """One release's traffic in a step."""
    requests: int
    errors: int  # 5xx
    p95_ms: float | None

    @property
    def error_percent(self) -> float:
        return self.errors * 100 / self.requests if self.requests else 0.0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "5xx": self.errors, "p95_ms": self.p95_ms}


@dataclass(frozen=True)
class Policy:
    error_margin: float  # percentage points
    latency_margin: float  # percent
    latency_floor_ms: float
    min_requests: int

    @classmethod
    def of(cls, app: App) -> "Policy":
        return cls(app.canary_error_margin, app.canary_latency_margin,
                   settings.SWITCHYARD["CANARY_LATENCY_FLOOR_MS"], app.canary_min_requests)


def errors_worse(old: Figures, new: Figures, policy: Policy) -> str:
    """Why the new release's 5xx ratio fails it, or ""."""
    if new.requests < policy.min_requests:
        return ""
    if new.error_percent - old.error_percent > policy.error_margin:
        return (f"5xx: new {new.error_percent:.1f}% ({new.errors} of {new.requests}) against old "
                f"{old.error_percent:.1f}% ({old.errors} of {old.requests}), more than {policy.error_margin:g} "
                "points worse")
    return ""


def latency_worse(old: Figures, new: Figures, policy: Policy) -> str:
    """Why the new release's p95 fails it, or ""."""
    if new.requests < policy.min_requests or old.p95_ms is None or new.p95_ms is None:
        return ""
    limit = old.p95_ms * (1 + policy.latency_margin / 100)
    if new.p95_ms > limit and new.p95_ms - old.p95_ms > policy.latency_floor_ms:
        return (f"p95: new {new.p95_ms:.0f} ms against old {old.p95_ms:.0f} ms, more than "
                f"{policy.latency_margin:g}% slower")
    return ""


class Canary:
    def __init__(self, deployment: Deployment, previous: Deployment, log: DeploymentLog,
                 say: Callable[[str], None], broken: Callable[[], str]) -> None:
        self.deployment, self.previous, self.app = deployment, previous, deployment.app
        self.log, self._say, self._broken = log, say, broken  # broken(): a server DOWN or a container exited
        self.policy = Policy.of(self.app)
        self.live_colour = self.app.idle_colour_of(deployment.colour)
        self.steps: list[dict] = []

    def run(self) -> None:
        """Returns when the new release may take all the traffic (every step passed, or it was
        promoted); raises CanaryFailed with the old release serving alone again."""
        percents = [p for p in self.app.canary_steps if p < 100]
        seconds = self.app.canary_step_seconds
        self._say(f"Canary: {', '.join(f'{p}%' for p in percents)}, then 100%; each step {seconds}s")
        backend = self.app.backend_name(self.live_colour)
        with LatencyFollower(target.paths().admin_socket, backend) as latency:
            latency.wait_until_following()
            for percent in percents:
                if not self._step(percent, seconds, latency):
                    break  # promoted
        self._record(verdict="passed" if all(s["verdict"] != "promoted" for s in self.steps) else "promoted")

    def mark_rolled_back(self) -> None:
        """The canary passed, the watch after the switch did not: the page must not show 100 %."""
        self._record(percent=0, verdict="rolled back")

    def withdraw(self) -> None:
        """All traffic back on the old release (the c slots leave the live backend)."""
        changes.set_canary_share(self.deployment, 0)

    def _step(self, percent: int, seconds: int, latency: LatencyFollower) -> bool:
        """Hold one step; False if promoted during it."""
        changes.set_canary_share(self.deployment, percent)
        baseline = self._responses()
        latency.start_window()
        step = {"percent": percent, "started_at": timezone.now().isoformat(), "verdict": "running"}
        self.steps.append(step)
        self._record(percent=percent)
        self._say(f"Canary step {len(self.steps)}: {percent}% of new clients go to the new release for {seconds}s")
        deadline = time.monotonic() + seconds
        while True:
            old, new = self._figures(baseline, latency)
            step.update(old=old.as_dict(), new=new.as_dict())
            reason = errors_worse(old, new, self.policy) or self._broken() or self._aborted()
            if reason:
                self._fail(step, reason)
            promoter = lifecycle.promoted_by(self.deployment.pk)
            if promoter is not None:
                lifecycle.consume_promote(self.deployment.pk)
                step.update(verdict="promoted", ended_at=timezone.now().isoformat())
                self._say(f"Promoted by {promoter or 'a user'}: the remaining canary steps are skipped")
                return False
            if time.monotonic() >= deadline:
                break
            self._record()
            time.sleep(POLL_SECONDS)
        reason = latency_worse(old, new, self.policy)
        if reason:
            self._fail(step, reason)
        step["verdict"] = "as good" if new.requests >= self.policy.min_requests else "too little traffic"
        step["ended_at"] = timezone.now().isoformat()
        self._say(f"Canary step {len(self.steps)} ({percent}%): {step['verdict']}: " + _describe(old, new))
        return True

    def _figures(self, baseline, latency: LatencyFollower) -> tuple[Figures, Figures]:
        old_now, new_now = self._responses()
        old, new = old_now.since(baseline[0]), new_now.since(baseline[1])
        return Figures(old.total, old.errors, latency.p95("old")), Figures(new.total, new.errors, latency.p95("new"))

    def _responses(self) -> tuple[stats.Responses, stats.Responses]:
        return readings.canary_responses(self.app, self.live_colour, len(self.previous.containers),
                                       len(self.deployment.containers))

    def _aborted(self) -> str:
        by = lifecycle.aborted_by(self.deployment.pk)
        return "" if by is None else f"aborted by {by or 'a user'}"

    def _fail(self, step: dict, reason: str) -> None:
        started = time.monotonic()
        self.withdraw()
        step.update(verdict="worse" if not reason.startswith("aborted") else "aborted", reason=reason,
                    ended_at=timezone.now().isoformat())
        self._record(percent=0, verdict="rolled back")
        self._say(f"Canary step {len(self.steps)} ({step['percent']}%): {reason}; all traffic is back on the old "
                  f"release ({(time.monotonic() - started) * 1000:.0f} ms)")
        raise CanaryFailed(f"canary at {step['percent']}%: {reason}", _kind_of(reason))

    def _record(self, percent: int | None = None, verdict: str | None = None) -> None:
        state = {**self.deployment.canary, "steps": self.steps, "step_seconds": self.app.canary_step_seconds,
                 "percent": self.deployment.canary_percent if percent is None else percent}
        if verdict:
            state["verdict"] = verdict
        lifecycle.record_canary(self.deployment, canary=state)
        self.log.send({"type": "deployment.state"})  # the page reads the state, canary included


def _kind_of(reason: str) -> str:
    if reason.startswith("aborted"):
        return "aborted"
    if reason.startswith(("5xx", "p95")):
        return f"canary-{reason[:3]}"
    return "canary-health" if "DOWN" in reason else "canary-exited"


def _describe(old: Figures, new: Figures) -> str:
    def one(figures: Figures) -> str:
        p95 = f", p95 {figures.p95_ms:.0f} ms" if figures.p95_ms is not None else ""
        return f"{figures.requests} requests, {figures.errors} 5xx{p95}"
    return f"new {one(new)}; old {one(old)}"

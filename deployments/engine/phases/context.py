"""What the phases of one deployment share: the deployment context (the row and its app, the
release being deployed, what the phases started and measured) and the ways a phase ends early.

The context writes the deployment's own fields (commit, image, containers, services, ...) as the
phases learn them; its state is lifecycle.py's alone (engine/pipeline.py asks it to move)."""
import gc

from django.db import connection

from deployments.compose.project import Project
from deployments.dockerfile import check
from deployments.engine import lifecycle
from deployments.engine.canary import Canary
from deployments.engine.companions import Companions
from deployments.engine.logs import DeploymentLog
from deployments.haproxy import stats
from deployments.models import App, Deployment


class Cancelled(Exception):
    """Someone asked to cancel before the switch."""


class RolledBack(Exception):
    """The watch or the canary caught the new release misbehaving; traffic is back on the old one.
    `reason` is one word for /metrics: what caught it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PhaseFailed(Exception):
    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(f"{phase} failed: {reason}")
        self.phase = phase


class DeploymentContext:
    """One deployment as its phases see it. Fields a phase fills are None or empty until then."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.app: App = deployment.app
        self.previous: Deployment | None = deployment.previous
        if self.previous is not None:
            self.previous.app = self.app  # one App object: what either goes live as is seen by both
        self.environment = self.app.environment()
        self.log = DeploymentLog(deployment.id, secrets=list(self.environment.values()))
        self.stopped_previous = False
        self.switched = False  # from here on the new release serves: undoing means rolling back
        self.healthy_at = 0.0  # monotonic time HAProxy reported the new servers UP
        self.old_colour = self.app.live_colour
        self.recreate = not self.app.zero_downtime
        self.project: Project | None = None  # known once the source is (after fetch, or a redeploy's)
        self.images: dict[str, str] = {}  # service → image tag
        self.checked: dict[str, tuple[check.Checked, str]] = {}  # service → its checked Dockerfile, build target
        self.companions: Companions | None = None
        self.canary: Canary | None = None
        self.switch_ms: float | None = None
        self.traffic_before: dict[str, stats.Responses] | None = None
        self.canary_slots_before: stats.Responses | None = None
        self.armed: tuple[str, int] | None = None  # (backend, slots) verify.arm took out of maintenance

    def canary_applies(self) -> bool:
        return bool(self.app.canary_steps and self.previous and self.previous.containers and not self.recreate)

    def watch_applies(self) -> bool:
        return bool(self.app.watch_window and self.previous and self.previous.containers and not self.stopped_previous)

    def save(self, **fields) -> None:
        """The deployment's fields, in memory and in its row (never its state: lifecycle's)."""
        for name, value in fields.items():
            setattr(self.deployment, name, value)
        Deployment.objects.filter(pk=self.deployment.pk).update(**fields)
        if {"phase", "watch_until"} & set(fields):
            self.publish_state()

    def publish_state(self) -> None:
        self.log.send({"type": "deployment.state", "state": self.deployment.state,
                       "phase": self.deployment.phase, "error": self.deployment.error})

    def say_web(self, text: str) -> None:
        """A line about the web service's release; in a Compose app it names the service, as the
        other services' lines do."""
        self.log.write(f"[{self.project.web.name}] {text}" if self.deployment.compose_text else text)

    def web_stop_timeout(self) -> int:
        """A Compose web service's stop_grace_period, else the app's stop timeout."""
        return self.project.web.stop_grace_period if self.deployment.compose_text else self.app.stop_timeout

    def cancel_requested(self) -> bool:
        return lifecycle.cancel_requested(self.deployment.pk)

    def cancel_requested_in_thread(self) -> bool:
        """For the build watcher's thread, which must not keep a database connection open."""
        try:
            return self.cancel_requested()
        finally:
            connection.close()

    def raise_if_cancelled(self) -> None:
        if self.cancel_requested():
            raise Cancelled()

    def enter_hot_path(self) -> None:
        """From "the new release is healthy" (or "broken") until HAProxy routes accordingly,
        nothing may wait: log lines and state messages stay in memory, and no garbage
        collection pass may start (a full one takes ~50 ms in a process with Django, Celery
        and the Docker SDK loaded, measured here)."""
        self.log.hold()
        gc.disable()

    def leave_hot_path(self) -> None:
        gc.enable()
        self.log.release()

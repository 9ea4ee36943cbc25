"""A deployment (one release of an app, from queued to its end) and its log lines."""
import json

from django.db import models
from django.utils import timezone

from deployments import crypto
from deployments.models.fields import ContainerListField, ServiceListField
from deployments.validators import validate_git_ref


class Deployment(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"
        CANCELLED = "cancelled"
        SUPERSEDED = "superseded"

    class Trigger(models.TextChoices):
        CLI = "cli", "CLI"
        UI = "ui", "Panel"
        WEBHOOK = "webhook", "Webhook"
        API = "api", "API"

    PHASES = ("fetch", "build", "start", "verify", "canary", "switch", "watch", "drain")
    # Until the switch a cancel leaves the old release untouched; after it, the new one serves.
    CANCELLABLE_PHASES = ("", "fetch", "build", "start", "verify")
    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.CANCELLED, State.SUPERSEDED)

    app = models.ForeignKey("App", on_delete=models.CASCADE, related_name="deployments")  # by name: App imports this module
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.CLI)
    triggered_by = models.CharField(max_length=150, blank=True)
    ref = models.CharField(max_length=200, validators=[validate_git_ref])
    commit_sha = models.CharField(max_length=40, blank=True)
    # A build's tag, or a pulled web service's repository@sha256:... (a reference may be 255 long, its digest 71 more).
    image = models.CharField(max_length=400, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED, db_index=True)
    phase = models.CharField(max_length=10, blank=True)
    phase_times = models.JSONField(default=dict, blank=True)  # {"build": {"start": iso, "end": iso}}
    error = models.TextField(blank=True)
    colour = models.CharField(max_length=5, blank=True)
    # The containers it started, in server-slot order.
    containers = ContainerListField(default=list, blank=True)
    # A Compose app's release: the compose file as it was at the commit (a redeploy reads it
    # again), and its services besides the web one, with their images and containers.
    compose_text = models.TextField(blank=True)
    services = ServiceListField(default=list, blank=True)
    # What the panel shows of that file, as the worker read it with the repository's files (an
    # `include`d or `extends`ed file is read only there): {"roles": {role: [service, ...]},
    # "recreate": [why the web service is recreated], "notices": [what was not done as written]}.
    compose_summary = models.JSONField(default=dict, blank=True)
    # Its services' pre_stop hooks as its compose file resolved them at deploy (engine/hooks.py),
    # encrypted like the app's variables, which their environment may hold: {"web": [hook, ...],
    # "services": {name: [hook, ...]}}. Whatever stops one of its containers runs them, a
    # reconcile too, without reading the file again with today's settings.
    encrypted_pre_stop = models.TextField(blank=True)
    # Image services (no build): service → {"reference": as written, "pinned": repository@sha256:...,
    # "image_id": ...}, as pulled at this deploy; a redeploy runs exactly these (engine/phases/pull.py).
    pinned_images = models.JSONField(default=dict, blank=True)
    # True while HAProxy has (or should have) this deployment's containers as servers.
    holds_backend = models.BooleanField(default=False)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A redeploy reuses this deployment's image: no fetch, no build.
    redeploy_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.CharField(max_length=150, blank=True)
    promote_requested = models.BooleanField(default=False)
    promoted_by = models.CharField(max_length=150, blank=True)
    watch_until = models.DateTimeField(null=True, blank=True)
    # A canary (engine/canary.py): its steps as they went, {"steps": [...], "percent": n, "verdict": ...};
    # Abort sends all traffic back to the old release at once.
    canary = models.JSONField(default=dict, blank=True)
    # During a canary, its containers sit in the live backend's c slots with this share of the traffic.
    canary_percent = models.PositiveSmallIntegerField(default=0)
    # For /metrics: ms from HAProxy's "UP" (or the canary's verdict) to the map switch, and why
    # it was rolled back, in a word (ROLLBACK_REASONS).
    switch_ms = models.FloatField(null=True, blank=True)
    rollback_reason = models.CharField(max_length=20, blank=True)
    abort_requested = models.BooleanField(default=False)
    aborted_by = models.CharField(max_length=150, blank=True)
    # While watched, the previous release's containers sit in this backend as HAProxy
    # `backup` servers: if the new ones go DOWN, HAProxy fails over before the engine acts.
    serves_backup = models.BooleanField(default=False)
    # From HAProxy's counters: {"old": {"requests": n, "failed": m}, "new": {...}}
    traffic = models.JSONField(default=dict, blank=True)
    # The health check this deployment was verified with; HAProxy keeps checking its
    # servers the same way even if the app's settings change later.
    health_check = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The Celery task that claimed it: when that task's pool process is lost, the worker's main
    # process names the task, and only the deployment that task runs is ended at once.
    runner = models.CharField(max_length=64, blank=True)
    # HAProxy's answer counters when the deployment started, for its traffic figures: kept here
    # because the task that carries on after verify (on the watch queue) computes them at the end.
    traffic_baseline = models.JSONField(default=dict, blank=True)
    # What the watch compares with, read as the switch ended (engine/phases/watch.py, Baseline):
    # the watch window runs from then, the hand-off to the watch worker inside it. Empty: the
    # watch reads it as it begins.
    watch_baseline = models.JSONField(default=dict, blank=True)
    # What the release was started with (per container, and how many), counted in its owner's
    # totals while it runs or serves (deployments/quotas.py): the app's settings may be lowered
    # since, but its containers keep these until the next release. Null: not counted yet.
    memory_limit_mb = models.PositiveIntegerField(null=True, blank=True)
    container_count = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.app.name}#{self.pk}"

    @property
    def pre_stop(self) -> dict:
        """encrypted_pre_stop read ({} for a release recorded without hooks)."""
        return json.loads(crypto.decrypt(self.encrypted_pre_stop)) if self.encrypted_pre_stop else {}

    @staticmethod
    def sealed_pre_stop(record: dict) -> str:
        """The value of encrypted_pre_stop for `record`."""
        return crypto.encrypt(json.dumps(record))

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:12]

    @property
    def is_cancellable(self) -> bool:
        """Queued, or running and not yet switched: after the switch the new release serves."""
        if self.state == self.State.QUEUED:
            return True
        return self.state == self.State.RUNNING and self.phase in self.CANCELLABLE_PHASES

    @property
    def traffic_summary(self) -> tuple[int, int] | None:
        """(requests, failed) over both releases, or None if nothing was recorded."""
        if not self.traffic:
            return None
        return (sum(part.get("requests", 0) for part in self.traffic.values()),
                sum(part.get("failed", 0) for part in self.traffic.values()))

    def log_complete(self) -> bool:
        """Whether the log holds every line of an ended deployment. The pipeline stores its
        last lines ("Deployment succeeded", …) just after the final state, and the lines it held
        in memory since its last write with them; a reconcile that ended it writes one line."""
        if not self.is_final:
            return False
        if not self.phase:  # ended while queued (cancelled, superseded): no pipeline ran
            return True
        outcome = (models.Q(text__startswith=f"Deployment {self.state}")
                   | models.Q(text__startswith="reconcile:", text__endswith=f"marked {self.state}"))
        return self.log_lines.filter(outcome).exists()

    def duration(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    def phase_duration(self, phase: str) -> float | None:
        times = self.phase_times.get(phase, {})
        if "start" not in times or "end" not in times:
            return None
        start, end = (timezone.datetime.fromisoformat(times[k]) for k in ("start", "end"))
        return (end - start).total_seconds()


class LogLine(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["deployment", "seq"], name="unique_log_seq")]

"""Apps, their deployments, logs, webhook deliveries, deploy events and API tokens.

The database is the truth: HAProxy's config, map and runtime state, and which containers
should exist, are all derived from these rows (see traffic/rows.py and engine/reconcile.py).
"""
import hashlib
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from deployments import crypto
from deployments.git import deploy_keys
from deployments.dockerd.values import Container, ServiceRelease, image_namespace
from deployments.form_fields import PercentStepsFormField
from deployments.traffic.table import COLOURS, MAX_REPLICAS
from deployments.validators import (
    validate_app_name,
    validate_canary_steps,
    validate_capabilities,
    validate_compose_file,
    validate_dockerfile,
    validate_emails,
    validate_event_url,
    validate_finite,
    validate_env_key,
    validate_git_ref,
    validate_health_path,
    validate_host_header,
    validate_hostname,
    validate_release_command,
    validate_repo_url,
    validate_service_name,
)



def new_secret() -> str:
    return secrets.token_urlsafe(32)


def default_watch_window() -> int:
    return settings.SWITCHYARD["DEFAULT_WATCH_WINDOW"]


def default_memory_mb() -> int:
    return settings.SWITCHYARD["DEFAULT_MEMORY_MB"]


def default_cpus() -> float:
    return settings.SWITCHYARD["DEFAULT_CPUS"]


def default_pids() -> int:
    return settings.SWITCHYARD["DEFAULT_PIDS"]


def default_build_timeout() -> int:
    return settings.SWITCHYARD["BUILD_TIMEOUT"]


def default_canary_step_seconds() -> int:
    return settings.SWITCHYARD["DEFAULT_CANARY_STEP_SECONDS"]


class PercentStepsField(models.JSONField):
    """A list of whole percentages (canary steps); the panel shows and reads it as "5, 25, 50, 100"."""

    def formfield(self, **kwargs):
        return PercentStepsFormField(required=False, label=kwargs.get("label"), help_text=self.help_text)


class App(models.Model):
    name = models.CharField(max_length=32, unique=True, validators=[validate_app_name])
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    repo_url = models.CharField(max_length=500, validators=[validate_repo_url])
    # The URL was set by the CLI or a superuser: it may name a path on this machine or a private
    # address (git/repo_policy.py); a URL a tenant sets must be public at every fetch.
    repo_private_allowed = models.BooleanField(default=False)
    # The app's SSH deploy key (git/deploy_keys.py): the public line is shown to paste into the git
    # host; the private key is encrypted like env values and only ever given to the app's git.
    deploy_public_key = models.TextField(blank=True)
    encrypted_deploy_key = models.TextField(blank=True)
    branch = models.CharField(max_length=200, default="main", validators=[validate_git_ref])
    dockerfile = models.CharField(max_length=200, default="Dockerfile", validators=[validate_dockerfile])
    # A Compose app: the compose file in the repository, and the service HAProxy routes the
    # app's domains to (its container port is `port`). Blank: a single-Dockerfile app.
    compose_file = models.CharField(max_length=200, blank=True, validators=[validate_compose_file],
                                    help_text="the compose file in the repository; blank: the app is one Dockerfile")
    web_service = models.CharField(max_length=31, default="web", validators=[validate_service_name],
                                   help_text="the compose service the app's domains go to")
    port = models.PositiveIntegerField(default=8000, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    health_path = models.CharField(max_length=200, default="/health", validators=[validate_health_path])
    health_status = models.PositiveIntegerField(default=200, validators=[MinValueValidator(100), MaxValueValidator(599)])
    health_timeout = models.FloatField(default=2.0, validators=[validate_finite, MinValueValidator(0.1),
                                                                MaxValueValidator(60)])
    health_deadline = models.FloatField(default=60.0, validators=[validate_finite, MinValueValidator(1),
                                                                  MaxValueValidator(3600)])
    health_host = models.CharField(max_length=253, blank=True, validators=[validate_host_header],
                                   help_text="Host header for health checks; blank: NAME.localhost")
    replicas = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_REPLICAS)])
    stop_timeout = models.PositiveIntegerField(default=10, validators=[MaxValueValidator(600)])
    zero_downtime = models.BooleanField(default=True)
    watch_window = models.PositiveIntegerField(
        default=default_watch_window, validators=[MaxValueValidator(3600)],
        help_text="seconds the old release stays ready after the switch while the new one is watched; 0: no watch")
    watch_error_percent = models.FloatField(default=5.0, validators=[validate_finite, MinValueValidator(0.1),
                                                                     MaxValueValidator(100)])
    watch_min_requests = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    # Canary (see docs/deployments.md, "Canary"): after verify the new release takes these shares of the
    # traffic in turn, each held canary_step_seconds and compared with the old release's.
    canary_steps = PercentStepsField(
        default=list, blank=True, validators=[validate_canary_steps],
        help_text="percent of the traffic on the new release at each step, e.g. 5, 25, 50, 100; empty: no canary")
    canary_step_seconds = models.PositiveIntegerField(
        default=default_canary_step_seconds, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="seconds each canary step is held")
    canary_error_margin = models.FloatField(
        default=1.0, validators=[validate_finite, MinValueValidator(0), MaxValueValidator(100)],
        help_text="percentage points of 5xx the new release may have above the old before it is rolled back")
    canary_latency_margin = models.FloatField(
        default=50.0, validators=[validate_finite, MinValueValidator(0), MaxValueValidator(10000)],
        help_text="percent the new release's p95 latency may exceed the old's before it is rolled back")
    canary_min_requests = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(1000000)],
        help_text="requests the new release must answer in a step before it is compared")
    # Commit statuses on the git provider for deployments from a push (docs/deploy-events.md, "Commit status").
    encrypted_commit_status_token = models.TextField(blank=True)
    release_command = models.CharField(
        max_length=1000, blank=True, validators=[validate_release_command],
        help_text="run once in a container of the new image before it starts (e.g. migrations); empty: none")
    auto_deploy = models.BooleanField(default=True, help_text="deploy every push to the branch")
    # HTTPS (see docs/https.md, "Redirect and HSTS"): plain HTTP on a domain with a certificate redirects to HTTPS.
    https_redirect = models.BooleanField(default=True, help_text="redirect plain HTTP to HTTPS once a domain has a certificate")
    hsts = models.BooleanField(default=False, help_text="send Strict-Transport-Security on HTTPS answers (browsers then refuse plain HTTP for a year)")
    # Confinement of the app's containers (see docs/security-model.md, "Confined apps").
    memory_limit_mb = models.PositiveIntegerField(
        default=default_memory_mb, validators=[MinValueValidator(16), MaxValueValidator(65536)],
        help_text="memory of each container, MiB; above it the kernel kills the process")
    cpu_limit = models.FloatField(default=default_cpus, validators=[validate_finite, MinValueValidator(0.05),
                                                                    MaxValueValidator(64)],
                                  help_text="CPUs each container may use, e.g. 0.5")
    pids_limit = models.PositiveIntegerField(
        default=default_pids, validators=[MinValueValidator(16), MaxValueValidator(32768)],
        help_text="processes and threads each container may have")
    capabilities = models.CharField(
        max_length=300, blank=True, validators=[validate_capabilities],
        help_text="Linux capabilities given back, space separated (e.g. NET_BIND_SERVICE); all others are dropped")
    build_timeout = models.PositiveIntegerField(
        default=default_build_timeout, validators=[MinValueValidator(5), MaxValueValidator(86400)],
        help_text="seconds a build may take before it is stopped")
    webhook_secret = models.CharField(max_length=64, default=new_secret)
    live_colour = models.CharField(max_length=5, default="blue", choices=[(c, c) for c in COLOURS])
    live_deployment = models.ForeignKey(
        "Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if self._state.adding and not self.deploy_public_key:
            self.new_deploy_key()  # every app has its own from the start (older ones: migration 0011)
        super().save(*args, **kwargs)

    @property
    def idle_colour(self) -> str:
        return self.idle_colour_of(self.live_colour)

    @staticmethod
    def idle_colour_of(colour: str) -> str:
        return "green" if colour == "blue" else "blue"

    @property
    def default_hostname(self) -> str:
        return f"{self.name}.localhost"

    def public_domains(self) -> list[str]:
        """The domains a certificate is issued for: all but those under .localhost."""
        return [host for host in self.hostnames() if host != "localhost" and not host.endswith(".localhost")]

    @property
    def commit_status_token(self) -> str:
        return crypto.decrypt(self.encrypted_commit_status_token) if self.encrypted_commit_status_token else ""

    @commit_status_token.setter
    def commit_status_token(self, plain: str) -> None:
        self.encrypted_commit_status_token = crypto.encrypt(plain) if plain else ""

    def hostnames(self) -> list[str]:
        """Every host that routes to this app: its own domains, and NAME.localhost where those
        names are on (SWITCHYARD_LOCALHOST_NAMES; by default only when HAProxy binds loopback)."""
        own = [domain.hostname for domain in self.domains.all()]  # prefetch-aware
        return [self.default_hostname, *own] if settings.SWITCHYARD["LOCALHOST_NAMES"] else own

    @property
    def deploy_private_key(self) -> str:
        return crypto.decrypt(self.encrypted_deploy_key) if self.encrypted_deploy_key else ""

    def new_deploy_key(self) -> None:
        """A fresh key pair on this instance (saved by the caller); the old key stops working."""
        private, self.deploy_public_key = deploy_keys.generate(f"switchyard-{self.name}")
        self.encrypted_deploy_key = crypto.encrypt(private)

    def health_check_host(self) -> str:
        return self.health_host or self.default_hostname

    def backend_name(self, colour: str) -> str:
        return f"app_{self.name}_{colour}"

    def rotate_webhook_secret(self) -> str:
        self.webhook_secret = new_secret()
        App.objects.filter(pk=self.pk).update(webhook_secret=self.webhook_secret)
        return self.webhook_secret

    def image_repository(self) -> str:
        return f"{image_namespace()}/{self.name}"

    def service_image_repository(self, service: str) -> str:
        """A Compose app's images are tagged per service (and commit)."""
        return f"{self.image_repository()}/{service}" if self.compose_file else self.image_repository()

    def kept_images(self, newest: str = "") -> list[str]:
        """The images a deploy keeps for redeploys: `newest` (the one going live) and those of the
        latest successes, KEEP_IMAGES in all. The worker prunes by this rule and the panel offers
        Redeploy by it, so the panel never needs to ask Docker."""
        kept = [newest] if newest else []
        for image in (self.deployments.filter(state=Deployment.State.SUCCEEDED).exclude(image="")
                      .order_by("-finished_at").values_list("image", flat=True)):
            if len(kept) >= settings.SWITCHYARD["KEEP_IMAGES"]:
                break
            if image not in kept:
                kept.append(image)
        return kept

    def kept_service_images(self, web_images: list[str]) -> set[str]:
        """With a Compose app, the other services' images of the releases whose web image is kept."""
        kept = set(web_images)
        for deployment in self.deployments.filter(image__in=web_images).only("services"):
            kept |= {service.image for service in deployment.services}
        return kept

    def environment(self) -> dict[str, str]:
        return {var.key: var.value for var in self.env_vars.all()}

    def current_health_check(self) -> dict:
        """The health check as a deployment records it when it starts."""
        return {"path": self.health_path, "status": self.health_status, "host": self.health_check_host(),
                "timeout": self.health_timeout}


class Membership(models.Model):
    """A user's role on an app. Roles grow: viewer < deployer < admin."""

    class Role(models.TextChoices):
        VIEWER = "viewer"
        DEPLOYER = "deployer"
        ADMIN = "admin"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "user"], name="unique_member_per_app")]
        ordering = ["user__username"]


class Domain(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="domains")
    hostname = models.CharField(max_length=253, unique=True, validators=[validate_hostname])

    class Meta:
        ordering = ["id"]  # the map file lists hosts in a stable order, so it is rewritten only on change

    def __str__(self) -> str:
        return self.hostname


class EnvVar(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="env_vars")
    key = models.CharField(max_length=128, validators=[validate_env_key])
    encrypted_value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "key"], name="unique_env_key_per_app")]
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def value(self) -> str:
        return crypto.decrypt(self.encrypted_value)

    @value.setter
    def value(self, plain: str) -> None:
        self.encrypted_value = crypto.encrypt(plain)


class _TypedListField(models.JSONField):
    """A list of `item_type` values (with as_dict/from_dict), stored as a JSON list of objects."""
    item_type: type

    def from_db_value(self, value, expression, connection) -> list:
        return [self.item_type.from_dict(item) for item in super().from_db_value(value, expression, connection) or []]

    def get_prep_value(self, value):
        if isinstance(value, list):
            value = [item.as_dict() if isinstance(item, self.item_type) else item for item in value]
        return super().get_prep_value(value)


class ContainerListField(_TypedListField):
    """A list of Container values ({"id", "name", "ip", "port"})."""
    item_type = Container


class ServiceListField(_TypedListField):
    """A release's services besides the web one: a list of ServiceRelease values."""
    item_type = ServiceRelease


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

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="deployments")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.CLI)
    triggered_by = models.CharField(max_length=150, blank=True)
    ref = models.CharField(max_length=200, validators=[validate_git_ref])
    commit_sha = models.CharField(max_length=40, blank=True)
    image = models.CharField(max_length=200, blank=True)
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


class WebhookDelivery(models.Model):
    """One request to an app's webhook, whatever came of it."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField(default=timezone.now)
    provider = models.CharField(max_length=20)
    event = models.CharField(max_length=60, blank=True)
    delivery_id = models.CharField(max_length=100, blank=True)
    status_code = models.PositiveSmallIntegerField()
    result = models.CharField(max_length=300)
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The push as read from a verified delivery (kind, branch, sha, pusher), for Redeliver.
    push = models.JSONField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["app", "provider", "delivery_id"])]


EVENTS = ("succeeded", "failed", "rolled_back", "cancelled")  # how a deployment can end, as events


def all_events() -> list[str]:
    return list(EVENTS)


class NotificationTarget(models.Model):
    """Where an app's deploy events go (outgoing/events.py sends them)."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Signed JSON webhook"
        SLACK = "slack", "Slack-compatible webhook"
        EMAIL = "email", "E-mail"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="notification_targets")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.CharField(max_length=500, blank=True, validators=[validate_event_url])  # webhook, slack
    emails = models.CharField(max_length=500, blank=True, validators=[validate_emails])  # email
    # Signs each webhook delivery (X-Switchyard-Signature: sha256=HMAC of the body).
    secret = models.CharField(max_length=64, default=new_secret)
    events = models.JSONField(default=all_events)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.url or self.emails}"


class EventDelivery(models.Model):
    """One event sent (or to send) to one target, or as a commit status to the git provider,
    with every attempt's outcome. Retried with backoff until delivered or out of attempts."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack"
        EMAIL = "email"
        COMMIT_STATUS = "commit_status"

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="event_deliveries")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="event_deliveries")
    target = models.ForeignKey(NotificationTarget, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="deliveries")
    kind = models.CharField(max_length=15, choices=Kind.choices)
    event = models.CharField(max_length=20)  # an EVENTS entry, or "started" (a commit status)
    url = models.CharField(max_length=500, blank=True)  # where it goes (e-mail: the addresses)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(
            fields=["deployment", "target", "kind", "event"], condition=models.Q(redelivery_of=None),
            name="one_event_per_deployment_target")]


class ApiToken(models.Model):
    """A bearer token that acts as its user. Only a hash is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    PREFIX = "sy_"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        token = cls.PREFIX + secrets.token_urlsafe(32)
        return cls.objects.create(user=user, name=name, token_hash=cls.hash(token), prefix=token[:10]), token

    @classmethod
    def user_for(cls, token: str):
        """The active user a token belongs to, or None."""
        found = cls.objects.select_related("user").filter(token_hash=cls.hash(token)).first()
        if found is None or not found.user.is_active:
            return None
        cls.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        return found.user


class AuditEvent(models.Model):
    """One state-changing action: who, when, from where, through what. App and user names
    are copied, so the record outlives both."""

    class Via(models.TextChoices):
        PANEL = "panel", "Panel"
        API = "api", "API"
        CLI = "cli", "CLI"
        WEBHOOK = "webhook", "Webhook"
        ADMIN = "admin", "Admin"

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=10, choices=Via.choices)
    address = models.GenericIPAddressField(null=True, blank=True)
    app = models.ForeignKey(App, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    app_name = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["app_name", "-at"]), models.Index(fields=["-at"])]


class AcmeAccount(models.Model):
    """Switchyard's account at an ACME server (one per directory URL); its key never leaves here."""
    directory = models.URLField(max_length=500, unique=True)
    email = models.CharField(max_length=254, blank=True)
    uri = models.URLField(max_length=500)
    encrypted_key = models.TextField()  # the account's private key, PEM, encrypted like env vars
    created_at = models.DateTimeField(default=timezone.now)

    @property
    def key_pem(self) -> str:
        return crypto.decrypt(self.encrypted_key)


class Certificate(models.Model):
    """The certificate an app's domains are served with over HTTPS, issued through ACME or
    uploaded, and where getting the next one stands. The certificate served stays in place
    while a renewal fails: the app goes on serving it (and plain HTTP) meanwhile."""

    class Source(models.TextChoices):
        ACME = "acme", "ACME"
        UPLOADED = "uploaded", "uploaded"

    class Status(models.TextChoices):
        PENDING = "pending"  # to be issued or renewed (a worker will)
        VALID = "valid"  # serving, nothing to do until its renewal time
        FAILED = "failed"  # the last attempt failed: error says why, next_attempt_at when it retries

    # None: the panel's own, for SWITCHYARD_PANEL_DOMAIN (one row, made by the worker: certificates.due).
    app = models.OneToOneField(App, null=True, blank=True, on_delete=models.CASCADE, related_name="certificate")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ACME)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # What is served (empty until the first one is issued or uploaded).
    domains = models.JSONField(default=list, blank=True)  # names it covers, from the certificate itself
    chain_pem = models.TextField(blank=True)  # the certificate, then its intermediates
    encrypted_key = models.TextField(blank=True)
    issuer = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    # HAProxy's own verdict (`haproxy -c` on a config holding this certificate alone, on its crt-list
    # line), remembered by what it was given (config.Tls.verdict_key): a render reads it, never runs it.
    haproxy_checked = models.CharField(max_length=64, blank=True)
    haproxy_refusal = models.TextField(blank=True)  # HAProxy's words; empty: it loaded them
    # The last attempt to get one.
    error = models.TextField(blank=True)
    failures = models.PositiveIntegerField(default=0)  # in a row; the retry waits longer each time
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"certificate of {self.holder}"

    @property
    def holder(self) -> str:
        return self.app.name if self.app else "the panel"

    @property
    def serving(self) -> bool:
        return bool(self.chain_pem and self.not_after and self.not_after > timezone.now())

    @property
    def key_pem(self) -> str:
        return crypto.decrypt(self.encrypted_key) if self.encrypted_key else ""

    def renewal_due_at(self):
        """When a third of its life is left."""
        return self.not_after - (self.not_after - self.not_before) / 3

    def haproxy_refused(self, verdict_key: str) -> str:
        """HAProxy's refusal of the certificate and SNI filters `verdict_key` names, if it last
        checked exactly those and refused them ("" if it loaded them or never checked them)."""
        return self.haproxy_refusal if self.haproxy_checked == verdict_key else ""

    def covers(self, host: str) -> bool:
        """Whether the served certificate is valid for `host` (a wildcard covers one label)."""
        return any(host == name or (name.startswith("*.") and host.partition(".")[2] == name[2:])
                   for name in self.domains)


class Quota(models.Model):
    """What a superuser grants one user beyond the administrator's ceilings (settings
    SWITCHYARD_MAX_APP_* and SWITCHYARD_USER_MAX_*); a blank field keeps the setting's value.
    Edited in Django admin; deployments/quotas.py applies it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    app_memory_mb = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(65536)],
                                                help_text="memory of each container of an app, MiB")
    app_cpus = models.FloatField(null=True, blank=True, validators=[validate_finite, MinValueValidator(0.05),
                                                                    MaxValueValidator(64)],
                                 help_text="CPUs of each container of an app")
    app_pids = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(32768)],
                                           help_text="processes of each container of an app")
    app_containers = models.PositiveIntegerField(null=True, blank=True, help_text="containers of one app")
    app_watch_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="watch window of an app, seconds")
    app_canary_seconds = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text="canary of an app (steps below 100 % × seconds each)")
    apps = models.PositiveIntegerField(null=True, blank=True, help_text="apps the user may own")
    memory_mb = models.PositiveIntegerField(null=True, blank=True,
                                            help_text="memory of all the user's containers together, MiB")
    containers = models.PositiveIntegerField(null=True, blank=True, help_text="containers of all the user's apps")

    def __str__(self) -> str:
        return f"quota of {self.user}"

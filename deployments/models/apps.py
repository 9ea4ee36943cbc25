"""An app and what only it has: its settings (the columns), members, domains and env vars."""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from deployments import crypto
from deployments.git import deploy_keys
from deployments.dockerd.values import image_namespace
from deployments.models.defaults import (
    default_build_timeout,
    default_canary_step_seconds,
    default_cpus,
    default_memory_mb,
    default_pids,
    default_watch_window,
    new_secret,
)
from deployments.models.deployments import Deployment
from deployments.models.fields import PercentStepsField
from deployments.traffic.table import COLOURS, MAX_REPLICAS
from deployments.validators import (
    validate_registry_host,
    validate_app_name,
    validate_canary_steps,
    validate_capabilities,
    validate_compose_file,
    validate_compose_profiles,
    validate_dockerfile,
    validate_env_key,
    validate_finite,
    validate_git_ref,
    validate_health_path,
    validate_host_header,
    validate_hostname,
    validate_release_command,
    validate_repo_url,
    validate_service_name,
)


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
    compose_profiles = models.CharField(max_length=200, blank=True, default="", validators=[validate_compose_profiles],
                                        help_text="the compose file's profiles to deploy, separated by spaces or "
                                                  "commas; services without profiles are always deployed")
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
    # The host the token was stored for (the repository's then): it is never sent anywhere else (outgoing/commit_status.py).
    commit_status_token_host = models.CharField(max_length=255, blank=True)
    # A private registry for a Compose app's image services: the credentials go with pulls from
    # this host only (engine/phases/pull.py), the password encrypted at rest like the token above.
    registry_host = models.CharField(
        max_length=253, blank=True, validators=[validate_registry_host],
        help_text="a private registry's host (and :port) the app's image services pull from with these credentials")
    registry_username = models.CharField(max_length=200, blank=True)
    encrypted_registry_password = models.TextField(blank=True)
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

    @property
    def registry_password(self) -> str:
        return crypto.decrypt(self.encrypted_registry_password) if self.encrypted_registry_password else ""

    @registry_password.setter
    def registry_password(self, plain: str) -> None:
        self.encrypted_registry_password = crypto.encrypt(plain) if plain else ""

    def hostnames(self) -> list[str]:
        """Every host that routes to this app: its own domains, and NAME.localhost where those
        names are on (SWITCHYARD_LOCALHOST_NAMES; by default only when HAProxy binds loopback)."""
        return self.routed_hostnames([domain.hostname for domain in self.domains.all()])  # prefetch-aware

    def routed_hostnames(self, own: list[str]) -> list[str]:
        """hostnames() for an app whose own domains were read already (a page of many apps)."""
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

    def kept_pinned_images(self, web_images: list[str]) -> set[str]:
        """The pulled images (repository@sha256:...) the app keeps: those its kept releases (by their
        web image, as kept_service_images) ran, and those of its deployments not ended yet (the one
        deploying, a queued redeploy's release)."""
        unfinished = self.deployments.exclude(state__in=Deployment.FINAL_STATES)
        releases = self.deployments.filter(Q(image__in=web_images) | Q(pk__in=unfinished.values("redeploy_of"))
                                           | ~Q(state__in=Deployment.FINAL_STATES))
        return {entry["pinned"] for pinned in releases.values_list("pinned_images", flat=True)
                for entry in pinned.values() if entry.get("pinned")}

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

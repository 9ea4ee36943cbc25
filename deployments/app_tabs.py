"""What each tab of the app page shows. A tab loads its own rows only: the overview does not read
webhook deliveries, the settings tab not the deployment history."""
from dataclasses import dataclass
from typing import Callable

from django.http import HttpRequest
from django.urls import reverse

from deployments import access, audit
from deployments.forms import CertificateForm, EnvVarForm, MemberForm, NotificationTargetForm, SettingsForm
from deployments.models import App, Deployment
from deployments.presenters import certificate, compose, steps
from deployments.traffic import readings

RECENT_DEPLOYMENTS = 5
HISTORY_LENGTH = 30
DELIVERIES_SHOWN = 20
AUDIT_SHOWN = 20


@dataclass(frozen=True)
class SettingsGroup:
    slug: str
    heading: str
    fields: tuple[str, ...]
    help: str = ""


# The settings form in the order a person looks for things; tests/unit/test_app_tabs.py checks
# that every field of the form is in exactly one group.
SETTINGS_GROUPS = (
    SettingsGroup("source", "Source", ("repo_url", "branch", "dockerfile", "compose_file", "web_service",
                                       "compose_profiles", "release_command", "build_timeout"),
                  "Where the release comes from and how it is built."),
    SettingsGroup("health", "Health and watch", ("port", "health_path", "health_status", "health_timeout",
                                                 "health_deadline", "health_host", "watch_window",
                                                 "watch_error_percent", "watch_min_requests", "stop_timeout"),
                  "How a new release is checked before it gets traffic, watched after, and stopped."),
    SettingsGroup("canary", "Canary", ("canary_steps", "canary_step_seconds", "canary_error_margin",
                                       "canary_latency_margin", "canary_min_requests"),
                  "A share of new clients on the new release, step by step, compared with the old one."),
    SettingsGroup("limits", "Limits", ("replicas", "memory_limit_mb", "cpu_limit", "pids_limit", "capabilities"),
                  "What each container may use."),
    SettingsGroup("domains", "Domains and HTTPS", ("domains", "https_redirect", "hsts"),
                  "Domains apply at once; a certificate is issued for public ones through ACME."),
)


def header(user, app: App) -> dict:
    """What every tab shows above the tab bar: the name, health, the Deploy box, the role."""
    role = access.role_of(user, app)
    live = App.objects.select_related("live_deployment").get(pk=app.pk)
    return {
        "app": app,
        "role": role,
        "can_deploy": access.allows(role, access.DEPLOYER),
        "can_admin": access.allows(role, access.ADMIN),
        "health": readings.live_health([live])[app.name],
    }


def overview(request: HttpRequest, app: App) -> dict:
    return {"hostnames": app.hostnames(), "history": history(app, RECENT_DEPLOYMENTS),
            "certificate": certificate(app), "compose": compose(app)}


def deployments(request: HttpRequest, app: App) -> dict:
    return {"history": history(app, HISTORY_LENGTH)}


def logs(request: HttpRequest, app: App) -> dict:
    return {}


def settings(request: HttpRequest, app: App) -> dict:
    return {
        "settings_form": SettingsForm(instance=app, initial={"domains": " ".join(
            app.domains.values_list("hostname", flat=True))}),
        "settings_groups": SETTINGS_GROUPS,
        "certificate": certificate(app),
        "certificate_form": CertificateForm(),
    }


def environment(request: HttpRequest, app: App) -> dict:
    return {"env_vars": list(app.env_vars.values_list("key", flat=True)), "env_form": EnvVarForm()}


def webhooks(request: HttpRequest, app: App) -> dict:
    return {
        "webhook_url": request.build_absolute_uri(reverse("webhook", args=[app.name])),
        "deliveries": app.deliveries.select_related("deployment")[:DELIVERIES_SHOWN],
        "notification_targets": app.notification_targets.all(),
        "event_deliveries": app.event_deliveries.select_related("target")[:DELIVERIES_SHOWN],
        "target_form": NotificationTargetForm(),
        "has_commit_status_token": bool(app.encrypted_commit_status_token),
    }


def members(request: HttpRequest, app: App) -> dict:
    return {"members": app.memberships.select_related("user"), "member_form": MemberForm()}


def activity(request: HttpRequest, app: App) -> dict:
    return {"audit_events": audit.visible_events(request.user, app)[:AUDIT_SHOWN]}


def history(app: App, length: int) -> list[dict]:
    """The newest deployments with their steps, and whether Redeploy can bring one back (its
    image is still kept and it is not the live one)."""
    kept_images = set(app.kept_images())
    return [{
        "deployment": deployment,
        "steps": steps(deployment),
        "is_live": deployment.pk == app.live_deployment_id,
        "can_redeploy": (deployment.state == Deployment.State.SUCCEEDED and deployment.image in kept_images
                         and deployment.pk != app.live_deployment_id),
    } for deployment in app.deployments.all()[:length]]


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    context: Callable[[HttpRequest, App], dict]
    admins_only: bool = False  # in the tab bar of admins only; anyone else gets a note there

    @property
    def template(self) -> str:
        return f"deployments/app/{self.slug}.html"


TABS = (
    Tab("overview", "Overview", overview),
    Tab("deployments", "Deployments", deployments),
    Tab("logs", "Logs", logs),
    Tab("settings", "Settings", settings),
    Tab("environment", "Environment", environment, admins_only=True),
    Tab("webhooks", "Webhooks and events", webhooks),
    Tab("members", "Members", members, admins_only=True),
    Tab("activity", "Activity", activity),
)
BY_SLUG = {tab.slug: tab for tab in TABS}

"""The REST API's request and response schemas, and the functions that fill the responses.
The app's settings come from the settings schema (application/app_settings.py), so a new
setting appears in the API (and its OpenAPI document) by itself."""
from datetime import datetime

from django.http import HttpRequest
from ninja import Schema
from pydantic import Field, create_model, model_validator

from deployments import access, presenters
from deployments.application.app_settings import ASKED_AT_CREATE, SETTINGS_FIELDS, default, help_text, python_type
from deployments.masking import without_password
from deployments.models import App, Deployment, EventDelivery, NotificationTarget
from deployments.traffic.table import MAX_REPLICAS


class ObjectBody(Schema):
    """A request body must be a JSON object: ninja would read fields off any value (5, [], "x")
    as if they were absent. It hands validators its DjangoGetter wrapper; _obj is the value."""

    @model_validator(mode="before")
    @classmethod
    def must_be_object(cls, value):
        if not isinstance(getattr(value, "_obj", value), dict):
            raise ValueError("the body must be a JSON object")
        return value


def _setting(name: str, value=None, **bounds):
    """(type, pydantic Field) of an App setting; floats must be finite (NaN would reach the database)."""
    extra = {"allow_inf_nan": False} if python_type(name) is float else {}
    return python_type(name), Field(value, description=help_text(name), **extra, **bounds)


def _optional(name: str):
    setting_type, field = _setting(name)
    return setting_type | None, field


AppIn = create_model(
    "AppIn", __base__=ObjectBody,
    name=(str, ...), repo_url=(str, Field(..., description=help_text("repo_url"))),
    **{name: _setting(name, default(name)) for name in ASKED_AT_CREATE if name != "repo_url"},
    replicas=_setting("replicas", default("replicas"), ge=1, le=MAX_REPLICAS),  # 422 beyond HAProxy's slots
    domains=(list[str], []), env=(dict[str, str], {}), zero_downtime=(bool, True),
    **{name: _optional(name) for name in SETTINGS_FIELDS if name not in {*ASKED_AT_CREATE, "replicas"}},
)

AppPatch = create_model(
    "AppPatch", __base__=ObjectBody,
    **{name: _optional(name) for name in SETTINGS_FIELDS},
    domains=(list[str] | None, None), zero_downtime=(bool | None, None), auto_deploy=(bool | None, None),
    env=(dict[str, str | None] | None, Field(None, description="set keys; a null value removes the key")),
)

AppOut = create_model(
    "AppOut", __base__=Schema,
    name=(str, ...), **{name: (python_type(name), ...) for name in SETTINGS_FIELDS},
    zero_downtime=(bool, ...), auto_deploy=(bool, ...), domains=(list[str], ...), env_keys=(list[str], ...),
    live_deployment=(int | None, ...), role=(str, ...), webhook_url=(str, ...),
    webhook_secret=(str | None, Field(description="the app's own credential; only for its admins")),
    deploy_key=(str, Field(description="the app's SSH public key: add it to the git host as a read-only deploy key "
                                        "(POST .../deploy-key/rotate for a new one)")),
    registry=(dict, Field(description='the private registry image services pull from: {"host": ..., "username": '
                                      '... (admins only, else null), "password_set": bool}; the password is never '
                                      'returned (PUT .../registry-credentials sets them)')),
)


class AuditEventOut(Schema):
    at: datetime
    user: str
    via: str
    address: str | None
    app: str
    action: str
    detail: str


class DeployIn(ObjectBody):
    ref: str | None = None


class DeploymentOut(Schema):
    id: int
    app: str
    state: str
    phase: str
    ref: str
    commit: str
    image: str
    trigger: str
    triggered_by: str
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    phases: list[dict]
    redeploy_of: int | None
    watch_until: datetime | None
    traffic: dict = Field(description='{"old": {"requests": n, "failed": m}, "new": {...}} from HAProxy')
    pinned_images: dict = Field(description='image services: {"SERVICE": {"reference": as written, "pinned": '
                                            '"repository@sha256:...", "image_id": ...}}, what this release ran')
    canary: dict | None = Field(None, description=(
        'a canary\'s steps: {"steps": [{"percent": p, "old": {"requests": n, "5xx": m, "p95_ms": t}, '
        '"new": {...}, "verdict": "as good" | "worse" | "too little traffic" | "promoted" | "aborted" | "running", '
        '"reason": ...}], "percent": the new release\'s share now, "verdict": "passed" | "promoted" | '
        '"rolled back"}; null without a canary'))


class CertificateIn(ObjectBody):
    certificate: str = Field(description="PEM: the certificate, then its intermediates")
    key: str = Field(description="PEM: its private key, unencrypted")


class CertificateOut(Schema):
    https_url: str | None = Field(description="where the app is served over HTTPS, once a certificate serves")
    source: str | None = Field(description='"acme" or "uploaded"; null: no public domain, so no certificate')
    status: str | None = Field(description='"pending", "valid" or "failed" (the last attempt; error says why)')
    domains: list[str]
    issuer: str
    not_before: datetime | None
    not_after: datetime | None
    renewal_at: datetime | None
    error: str
    next_attempt_at: datetime | None
    warning: str = Field(description="why a stored certificate is not served (it expired, ...); empty while it is")


class LogLineOut(Schema):
    seq: int
    text: str


def app_out(request: HttpRequest, app: App) -> dict:
    role = access.role_of(request.user, app)
    fields = {name: getattr(app, name) for name in AppOut.model_fields if hasattr(app, name) and name != "role"}
    return {
        **fields,
        "repo_url": without_password(app.repo_url),
        "deploy_key": app.deploy_public_key,
        "domains": list(app.domains.values_list("hostname", flat=True)),
        "env_keys": list(app.env_vars.values_list("key", flat=True)),
        "live_deployment": app.live_deployment_id,
        "role": role,
        "webhook_url": request.build_absolute_uri(f"/hooks/{app.name}/"),
        "webhook_secret": app.webhook_secret if access.allows(role, access.ADMIN) else None,
        "registry": {"host": app.registry_host,
                     "username": app.registry_username if access.allows(role, access.ADMIN) else None,
                     "password_set": bool(app.encrypted_registry_password)},
    }


def deployment_out(deployment: Deployment) -> dict:
    return {
        "id": deployment.pk, "app": deployment.app.name, "state": deployment.state, "phase": deployment.phase,
        "ref": deployment.ref, "commit": deployment.commit_sha, "image": deployment.image,
        "trigger": deployment.trigger, "triggered_by": deployment.triggered_by, "error": deployment.error,
        "created_at": deployment.created_at, "started_at": deployment.started_at,
        "finished_at": deployment.finished_at, "phases": presenters.steps(deployment),
        "redeploy_of": deployment.redeploy_of_id, "watch_until": deployment.watch_until,
        "traffic": deployment.traffic, "canary": deployment.canary or None,
        "pinned_images": deployment.pinned_images,
    }


# Deploy events ------------------------------------------------------------------------------

class NotificationTargetIn(ObjectBody):
    kind: str = Field(description="webhook (signed JSON) | slack | email")
    url: str = Field("", description="webhook and slack: where events are POSTed")
    emails: str = Field("", description="email: space or comma separated addresses")
    events: list[str] | None = Field(None, description="which ends: succeeded, failed, rolled_back, cancelled (default all)")


class NotificationTargetOut(Schema):
    id: int
    kind: str
    url: str
    emails: str
    events: list[str]
    secret: str | None = Field(description="signs webhook deliveries (X-Switchyard-Signature); only for admins")


class EventDeliveryOut(Schema):
    id: int
    deployment: int
    target: int | None
    kind: str
    event: str
    url: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    redelivery_of: int | None


class RegistryCredentialsIn(ObjectBody):
    host: str = Field(description="the private registry's host (and :port) as image names spell it; empty removes")
    username: str = Field("", description="the registry username")
    password: str = Field("", description="password or token; empty keeps the stored one for the same host")


class CommitStatusTokenIn(ObjectBody):
    token: str = Field(description="a GitHub, GitLab, Gitea or Forgejo token, sent only to the host of the app's repository "
                       "as it is now; empty removes it")


def target_out(target: NotificationTarget) -> dict:
    return {"id": target.pk, "kind": target.kind, "url": target.url, "emails": target.emails,
            "events": target.events, "secret": target.secret if target.kind == "webhook" else None}


def event_out(delivery: EventDelivery) -> dict:
    return {"id": delivery.pk, "deployment": delivery.deployment_id, "target": delivery.target_id,
            "kind": delivery.kind, "event": delivery.event, "url": delivery.url, "state": delivery.state,
            "attempts": delivery.attempts, "last_status": delivery.last_status, "last_error": delivery.last_error,
            "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
            "redelivery_of": delivery.redelivery_of_id}


# Audit log ----------------------------------------------------------------------------------

def audit_out(event) -> dict:
    return {"at": event.at, "user": event.username, "via": event.via, "address": event.address,
            "app": event.app_name, "action": event.action, "detail": event.detail}

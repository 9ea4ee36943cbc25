"""REST API (django-ninja), OpenAPI at /api/openapi.json. A bearer token acts as its user
with the same access as in the panel: outsiders get 404, lower roles 403. Every error is
JSON {"detail": "..."}."""
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import Field, create_model, model_validator

from deployments import access, audit, notifications, presenters
from deployments.application import apps, deploys, domains
from deployments.application.app_settings import SETTINGS_FIELDS, AppSpec
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput, NotPossible, TooSoon
from deployments.audit import Actor
from deployments.masking import without_password
from deployments.models import MAX_REPLICAS, ApiToken, App, Deployment, EventDelivery, LogLine, NotificationTarget

LOG_PAGE = 1000
AUDIT_PAGE_MAX = 1000


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(title="Switchyard", version="1", auth=TokenAuth(), urls_namespace="api")


@api.exception_handler(Http404)
def not_found(request, error):
    return api.create_response(request, {"detail": str(error) or "Not found"}, status=404)


@api.exception_handler(PermissionDenied)
def forbidden(request, error):
    return api.create_response(request, {"detail": str(error) or "Forbidden"}, status=403)


@api.exception_handler(AuthenticationError)
def unauthorized(request, error):
    return api.create_response(request, {"detail": "missing or invalid token: send Authorization: Bearer <token>"},
                               status=401)


@api.exception_handler(ValidationError)
def invalid(request, error):
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'body'}: {e.get('msg')}"
                         for e in error.errors)
    return api.create_response(request, {"detail": problems or "invalid input"}, status=422)


@api.exception_handler(InvalidInput)
def refused(request, error):
    return api.create_response(request, {"detail": str(error)}, status=400)


@api.exception_handler(TooSoon)
def too_soon(request, error):
    return api.create_response(request, {"detail": str(error)}, status=429)


@api.exception_handler(NotPossible)
def not_possible(request, error):
    return api.create_response(request, {"detail": str(error)}, status=409)


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, audit.Via.API)


# Schemas -----------------------------------------------------------------------------------

class ObjectBody(Schema):
    """A request body must be a JSON object: ninja would read fields off any value (5, [], "x")
    as if they were absent. It hands validators its DjangoGetter wrapper; _obj is the value."""

    @model_validator(mode="before")
    @classmethod
    def must_be_object(cls, value):
        if not isinstance(getattr(value, "_obj", value), dict):
            raise ValueError("the body must be a JSON object")
        return value


# The app's settings come from app_settings.SETTINGS_FIELDS and the model's own field types and
# help texts, so a new setting appears in the API (and its OpenAPI document) by itself.
PYTHON_TYPES = {"CharField": str, "PositiveIntegerField": int, "FloatField": float, "BooleanField": bool,
                "JSONField": list[int]}  # canary_steps


def _setting(name: str, default=None):
    """(type, pydantic Field) of an App setting; floats must be finite (NaN would reach the database)."""
    model_field = App._meta.get_field(name)
    python_type = PYTHON_TYPES[model_field.get_internal_type()]
    extra = {"allow_inf_nan": False} if python_type is float else {}
    return python_type, Field(default, description=str(model_field.help_text) or None, **extra)


def _optional(name: str):
    python_type, field = _setting(name)
    return python_type | None, field


CREATE_CORE = {"name", "repo_url", "branch", "dockerfile", "compose_file", "web_service", "port", "health_path",
               "replicas"}

AppIn = create_model(
    "AppIn", __base__=ObjectBody,
    name=(str, ...), repo_url=(str, ...), branch=(str, "main"), dockerfile=(str, "Dockerfile"),
    compose_file=(str, Field("", description="a Compose app: the compose file in the repository")),
    web_service=(str, Field("web", description="the compose service the app's domains go to")), port=(int, 8000),
    health_path=(str, "/health"), replicas=(int, Field(1, ge=1, le=MAX_REPLICAS)),
    domains=(list[str], []), env=(dict[str, str], {}), zero_downtime=(bool, True),
    **{name: _optional(name) for name in SETTINGS_FIELDS if name not in CREATE_CORE},
)

AppPatch = create_model(
    "AppPatch", __base__=ObjectBody,
    **{name: _optional(name) for name in SETTINGS_FIELDS},
    domains=(list[str] | None, None), zero_downtime=(bool | None, None), auto_deploy=(bool | None, None),
    env=(dict[str, str | None] | None, Field(None, description="set keys; a null value removes the key")),
)

AppOut = create_model(
    "AppOut", __base__=Schema,
    name=(str, ...), **{name: (_setting(name)[0], ...) for name in SETTINGS_FIELDS},
    zero_downtime=(bool, ...), auto_deploy=(bool, ...), domains=(list[str], ...), env_keys=(list[str], ...),
    live_deployment=(int | None, ...), role=(str, ...), webhook_url=(str, ...),
    webhook_secret=(str | None, Field(description="the app's own credential; only for its admins")),
    deploy_key=(str, Field(description="the app's SSH public key: add it to the git host as a read-only deploy key "
                                        "(POST .../deploy-key/rotate for a new one)")),
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


def _app_out(request: HttpRequest, app: App) -> dict:
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
    }


def _deployment_out(deployment: Deployment) -> dict:
    return {
        "id": deployment.pk, "app": deployment.app.name, "state": deployment.state, "phase": deployment.phase,
        "ref": deployment.ref, "commit": deployment.commit_sha, "image": deployment.image,
        "trigger": deployment.trigger, "triggered_by": deployment.triggered_by, "error": deployment.error,
        "created_at": deployment.created_at, "started_at": deployment.started_at,
        "finished_at": deployment.finished_at, "phases": presenters.steps(deployment),
        "redeploy_of": deployment.redeploy_of_id, "watch_until": deployment.watch_until,
        "traffic": deployment.traffic, "canary": deployment.canary or None,
    }


# Apps ---------------------------------------------------------------------------------------

@api.get("/apps", response=list[AppOut])
def list_apps(request):
    return [_app_out(request, app) for app in access.visible_apps(request.user)]


@api.post("/apps", response={201: AppOut})
def create_app(request, body: AppIn):
    app = apps.create_app(AppSpec.of(**body.dict()), actor=_actor(request))
    return Status(201, _app_out(request, app))


@api.get("/apps/{name}", response=AppOut)
def get_app(request, name: str):
    return _app_out(request, access.app_for_user(request.user, name))


@api.patch("/apps/{name}", response=AppOut)
def update_app(request, name: str, body: AppPatch):
    app = access.app_for_user(request.user, name, access.ADMIN)
    changes = body.dict(exclude_unset=True)
    _apply_patch(app, changes, _actor(request))
    return _app_out(request, App.objects.get(pk=app.pk))


def _apply_patch(app: App, changes: dict, actor: Actor) -> None:
    settings = {k: v for k, v in changes.items() if k in SETTINGS_FIELDS}
    # Said here: a column that may be blank (health_host, capabilities) skips validation for
    # null, which then failed on NOT NULL when saved (a 500).
    nulls = {name: ["must not be null; leave it out to keep the current value"]
             for name, value in settings.items() if value is None}
    if nulls:
        raise InvalidInput(nulls)
    apps.update_app(app, AppChanges(settings=settings, domains=changes.get("domains"), env=changes.get("env") or {},
                                    zero_downtime=changes.get("zero_downtime"), auto_deploy=changes.get("auto_deploy")),
                    actor=actor)


@api.delete("/apps/{name}", response={204: None})
def delete_app(request, name: str):
    access.app_for_user(request.user, name, access.ADMIN)
    apps.delete_app(name, actor=_actor(request))
    return Status(204, None)


@api.post("/apps/{name}/deploy-key/rotate", response=AppOut)
def rotate_deploy_key(request, name: str):
    """A new deploy key pair; the old public key no longer opens anything for this app."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    apps.rotate_deploy_key(app, actor=_actor(request))
    return _app_out(request, App.objects.get(pk=app.pk))


@api.get("/apps/{name}/deployments", response=list[DeploymentOut])
def list_deployments(request, name: str, limit: int = Query(50, ge=1, le=500)):
    app = access.app_for_user(request.user, name)
    return [_deployment_out(d) for d in app.deployments.select_related("app")[:limit]]


@api.post("/apps/{name}/deploy", response={202: DeploymentOut})
def deploy(request, name: str, body: DeployIn | None = None):
    app = access.app_for_user(request.user, name, access.DEPLOYER)
    deployment = deploys.deploy(app, ref=(body.ref if body else None) or None, actor=_actor(request))
    return Status(202, _deployment_out(deployment))


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


class CommitStatusTokenIn(ObjectBody):
    token: str = Field(description="a GitHub, GitLab or Gitea token; empty removes it")


def _target_out(target: NotificationTarget) -> dict:
    return {"id": target.pk, "kind": target.kind, "url": target.url, "emails": target.emails,
            "events": target.events, "secret": target.secret if target.kind == "webhook" else None}


def _event_out(delivery: EventDelivery) -> dict:
    return {"id": delivery.pk, "deployment": delivery.deployment_id, "target": delivery.target_id,
            "kind": delivery.kind, "event": delivery.event, "url": delivery.url, "state": delivery.state,
            "attempts": delivery.attempts, "last_status": delivery.last_status, "last_error": delivery.last_error,
            "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
            "redelivery_of": delivery.redelivery_of_id}


@api.get("/apps/{name}/notifications", response=list[NotificationTargetOut])
def list_notification_targets(request, name: str):
    app = access.app_for_user(request.user, name, access.ADMIN)
    return [_target_out(target) for target in app.notification_targets.all()]


@api.post("/apps/{name}/notifications", response={201: NotificationTargetOut})
def add_notification_target(request, name: str, body: NotificationTargetIn):
    app = access.app_for_user(request.user, name, access.ADMIN)
    target = notifications.add_target(app, _actor(request), body.kind, body.url, body.emails, body.events)
    return Status(201, _target_out(target))


@api.delete("/apps/{name}/notifications/{target_id}", response={204: None})
def delete_notification_target(request, name: str, target_id: int = Path(..., ge=1, le=2**62)):
    app = access.app_for_user(request.user, name, access.ADMIN)
    if not notifications.delete_target(app, _actor(request), target_id):
        raise HttpError(404, f"{name} has no notification target #{target_id}")
    return Status(204, None)


@api.put("/apps/{name}/commit-status-token", response={204: None})
def set_commit_status_token(request, name: str, body: CommitStatusTokenIn):
    app = access.app_for_user(request.user, name, access.ADMIN)
    notifications.set_commit_status_token(app, _actor(request), body.token)
    return Status(204, None)


@api.get("/apps/{name}/events", response=list[EventDeliveryOut])
def list_event_deliveries(request, name: str, limit: int = Query(50, ge=1, le=500)):
    """For the app's admins: a target's URL may hold a credential (a Slack webhook's does)."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    return [_event_out(delivery) for delivery in app.event_deliveries.all()[:limit]]


@api.post("/apps/{name}/events/{delivery_id}/redeliver", response={202: EventDeliveryOut})
def redeliver_event(request, name: str, delivery_id: int = Path(..., ge=1, le=2**62)):
    app = access.app_for_user(request.user, name, access.ADMIN)
    copy = notifications.redeliver(app, _actor(request), delivery_id)
    return Status(202, _event_out(copy))


# Deployments --------------------------------------------------------------------------------

@api.get("/deployments/{deployment_id}", response=DeploymentOut)
def get_deployment(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    return _deployment_out(access.deployment_for_user(request.user, deployment_id))


@api.get("/deployments/{deployment_id}/logs", response=list[LogLineOut])
def deployment_logs(request, deployment_id: int = Path(..., ge=1, le=2**62), after: int = Query(0, ge=0, le=2**31)):
    deployment = access.deployment_for_user(request.user, deployment_id)
    return list(LogLine.objects.filter(deployment=deployment, seq__gt=after).order_by("seq")
                .values("seq", "text")[:LOG_PAGE])


@api.post("/deployments/{deployment_id}/cancel", response=DeploymentOut)
def cancel(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return _deployment_out(deploys.cancel(deployment, actor=_actor(request)))


@api.post("/deployments/{deployment_id}/redeploy", response={202: DeploymentOut})
def redeploy(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    source = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    deployment = deploys.redeploy(source, actor=_actor(request))
    return Status(202, _deployment_out(deployment))


@api.post("/deployments/{deployment_id}/promote", response=DeploymentOut)
def promote(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return _deployment_out(deploys.promote(deployment, actor=_actor(request)))


@api.post("/deployments/{deployment_id}/abort", response=DeploymentOut)
def abort(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    """During a canary: all traffic back on the old release at once; the deployment ends rolled_back."""
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return _deployment_out(deploys.abort(deployment, actor=_actor(request)))


# Audit log ----------------------------------------------------------------------------------

def _audit_out(event) -> dict:
    return {"at": event.at, "user": event.username, "via": event.via, "address": event.address,
            "app": event.app_name, "action": event.action, "detail": event.detail}


@api.get("/audit", response=list[AuditEventOut])
def audit_log(request, app: str | None = None, limit: int = Query(100, ge=1, le=AUDIT_PAGE_MAX)):
    """Recorded actions, newest first: every one for superusers, else those on apps you can see
    and your own (tokens). `app` filters by app name."""
    events = audit.visible_events(request.user)
    if app:
        events = events.filter(app_name=app)
    return [_audit_out(e) for e in events[:limit]]


@api.get("/apps/{name}/certificate", response=CertificateOut)
def get_certificate(request, name: str):
    return presenters.certificate(access.app_for_user(request.user, name))


@api.post("/apps/{name}/certificate", response=CertificateOut)
def upload_certificate(request, name: str, body: CertificateIn):
    app = access.app_for_user(request.user, name, access.ADMIN)
    domains.upload_certificate(app, chain_pem=body.certificate, key_pem=body.key, actor=_actor(request))
    return presenters.certificate(App.objects.get(pk=app.pk))


@api.delete("/apps/{name}/certificate", response=CertificateOut)
def use_acme_certificate(request, name: str):
    """Drop an uploaded certificate: ACME issues one instead (409 if none was uploaded)."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    if not domains.use_acme_certificate(app, actor=_actor(request)):
        raise HttpError(409, "the app has no uploaded certificate; its certificate comes from ACME already")
    return presenters.certificate(App.objects.get(pk=app.pk))


@api.get("/apps/{name}/audit", response=list[AuditEventOut])
def app_audit_log(request, name: str, limit: int = Query(100, ge=1, le=AUDIT_PAGE_MAX)):
    app = access.app_for_user(request.user, name)
    return [_audit_out(e) for e in audit.visible_events(request.user, app)[:limit]]

"""REST API (django-ninja), OpenAPI at /api/openapi.json. A bearer token acts as its user
with the same access as in the panel: outsiders get 404, lower roles 403. Every error is
JSON {"detail": "..."}."""
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Path, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from deployments import access, audit, presenters
from deployments.api_hosts import router as hosts_router
from deployments.api_schemas import (
    AppIn,
    AppOut,
    AppPatch,
    AuditEventOut,
    CertificateIn,
    CertificateOut,
    CommitStatusTokenIn,
    RegistryCredentialsIn,
    DeployIn,
    DeploymentOut,
    EventDeliveryOut,
    LogLineOut,
    NotificationTargetIn,
    NotificationTargetOut,
    app_out,
    audit_out,
    deployment_out,
    event_out,
    target_out,
)
from deployments.application import apps, deploys, domains, events, registry_credentials
from deployments.application.app_settings import SETTINGS_FIELDS, AppSpec
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput, NotPossible, TooSoon
from deployments.audit import Actor
from deployments.models import ApiToken, App, LogLine

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


# Apps ---------------------------------------------------------------------------------------

@api.get("/apps", response=list[AppOut])
def list_apps(request):
    return [app_out(request, app) for app in access.visible_apps(request.user)]


@api.post("/apps", response={201: AppOut})
def create_app(request, body: AppIn):
    app = apps.create_app(AppSpec.of(**body.dict()), actor=_actor(request))
    return Status(201, app_out(request, app))


@api.get("/apps/{name}", response=AppOut)
def get_app(request, name: str):
    return app_out(request, access.app_for_user(request.user, name))


@api.patch("/apps/{name}", response=AppOut)
def update_app(request, name: str, body: AppPatch):
    app = access.app_for_user(request.user, name, access.ADMIN)
    changes = body.dict(exclude_unset=True)
    _apply_patch(app, changes, _actor(request))
    return app_out(request, App.objects.get(pk=app.pk))


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
    return app_out(request, App.objects.get(pk=app.pk))


@api.get("/apps/{name}/deployments", response=list[DeploymentOut])
def list_deployments(request, name: str, limit: int = Query(50, ge=1, le=500)):
    app = access.app_for_user(request.user, name)
    return [deployment_out(d) for d in app.deployments.select_related("app")[:limit]]


@api.post("/apps/{name}/deploy", response={202: DeploymentOut})
def deploy(request, name: str, body: DeployIn | None = None):
    app = access.app_for_user(request.user, name, access.DEPLOYER)
    deployment = deploys.deploy(app, ref=(body.ref if body else None) or None, actor=_actor(request))
    return Status(202, deployment_out(deployment))


# Deploy events ------------------------------------------------------------------------------

@api.get("/apps/{name}/notifications", response=list[NotificationTargetOut])
def list_notification_targets(request, name: str):
    app = access.app_for_user(request.user, name, access.ADMIN)
    return [target_out(target) for target in app.notification_targets.all()]


@api.post("/apps/{name}/notifications", response={201: NotificationTargetOut})
def add_notification_target(request, name: str, body: NotificationTargetIn):
    app = access.app_for_user(request.user, name, access.ADMIN)
    target = events.add_target(app, kind=body.kind, url=body.url, emails=body.emails, on=body.events,
                               actor=_actor(request))
    return Status(201, target_out(target))


@api.delete("/apps/{name}/notifications/{target_id}", response={204: None})
def delete_notification_target(request, name: str, target_id: int = Path(..., ge=1, le=2**62)):
    app = access.app_for_user(request.user, name, access.ADMIN)
    if not events.delete_target(app, target_id=target_id, actor=_actor(request)):
        raise HttpError(404, f"{name} has no notification target #{target_id}")
    return Status(204, None)


@api.put("/apps/{name}/commit-status-token", response={204: None})
def set_commit_status_token(request, name: str, body: CommitStatusTokenIn):
    app = access.app_for_user(request.user, name, access.ADMIN)
    events.set_commit_status_token(app, token=body.token, actor=_actor(request))
    return Status(204, None)


@api.put("/apps/{name}/registry-credentials", response={204: None})
def set_registry_credentials(request, name: str, body: RegistryCredentialsIn):
    """For image services from a private registry: sent with pulls from that host only; the password is never returned."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    registry_credentials.set_registry_credentials(app, host=body.host, username=body.username,
                                                  password=body.password, actor=_actor(request))
    return Status(204, None)


@api.get("/apps/{name}/events", response=list[EventDeliveryOut])
def list_event_deliveries(request, name: str, limit: int = Query(50, ge=1, le=500)):
    """For the app's admins: a target's URL may hold a credential (a Slack webhook's does)."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    return [event_out(delivery) for delivery in app.event_deliveries.all()[:limit]]


@api.post("/apps/{name}/events/{delivery_id}/redeliver", response={202: EventDeliveryOut})
def redeliver_event(request, name: str, delivery_id: int = Path(..., ge=1, le=2**62)):
    app = access.app_for_user(request.user, name, access.ADMIN)
    copy = events.redeliver(app, delivery_id=delivery_id, actor=_actor(request))
    return Status(202, event_out(copy))


# Deployments --------------------------------------------------------------------------------

@api.get("/deployments/{deployment_id}", response=DeploymentOut)
def get_deployment(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    return deployment_out(access.deployment_for_user(request.user, deployment_id))


@api.get("/deployments/{deployment_id}/logs", response=list[LogLineOut])
def deployment_logs(request, deployment_id: int = Path(..., ge=1, le=2**62), after: int = Query(0, ge=0, le=2**31)):
    deployment = access.deployment_for_user(request.user, deployment_id)
    return list(LogLine.objects.filter(deployment=deployment, seq__gt=after).order_by("seq")
                .values("seq", "text")[:LOG_PAGE])


@api.post("/deployments/{deployment_id}/cancel", response=DeploymentOut)
def cancel(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return deployment_out(deploys.cancel(deployment, actor=_actor(request)))


@api.post("/deployments/{deployment_id}/redeploy", response={202: DeploymentOut})
def redeploy(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    source = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    deployment = deploys.redeploy(source, actor=_actor(request))
    return Status(202, deployment_out(deployment))


@api.post("/deployments/{deployment_id}/promote", response=DeploymentOut)
def promote(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return deployment_out(deploys.promote(deployment, actor=_actor(request)))


@api.post("/deployments/{deployment_id}/abort", response=DeploymentOut)
def abort(request, deployment_id: int = Path(..., ge=1, le=2**62)):
    """During a canary: all traffic back on the old release at once; the deployment ends rolled_back."""
    deployment = access.deployment_for_user(request.user, deployment_id, access.DEPLOYER)
    return deployment_out(deploys.abort(deployment, actor=_actor(request)))


# Audit log ----------------------------------------------------------------------------------

@api.get("/audit", response=list[AuditEventOut])
def audit_log(request, app: str | None = None, limit: int = Query(100, ge=1, le=AUDIT_PAGE_MAX)):
    """Recorded actions, newest first: every one for superusers, else those on apps you can see
    and your own (tokens). `app` filters by app name."""
    events = audit.visible_events(request.user)
    if app:
        events = events.filter(app_name=app)
    return [audit_out(e) for e in events[:limit]]


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
    return [audit_out(e) for e in audit.visible_events(request.user, app)[:limit]]


# The fleet's hosts (superusers): api_hosts.py -------------------------------------------------

api.add_router("/hosts", hosts_router)

"""Pages and actions of the panel: thin, the rules are in access.py and the application layer;
an action is written once in panel_actions.py and each view here is only what it does."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments import access, app_pages, audit, presenters
from deployments.application import apps, deploys, domains, events, members, pushes, registry_credentials
from deployments.application.app_settings import AppSpec
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.traffic import readings
from deployments.forms import (
    CertificateForm,
    DeployForm,
    EnvVarForm,
    MemberForm,
    NewAppForm,
    NotificationTargetForm,
    SettingsForm,
    add_service_errors,
    split_hosts,
)
from deployments.models import LogLine
from deployments.panel_actions import Refused, actor, app_action, cleaned, deployment_action

LOG_PAGE = 1000
AUDIT_PAGE = 200


@login_required
def app_list(request: HttpRequest) -> HttpResponse:
    form = NewAppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        spec = AppSpec.of(**{k: v for k, v in data.items() if k != "domains"}, domains=split_hosts(data["domains"]))
        try:
            app = apps.create_app(spec, actor=actor(request))
        except InvalidInput as error:
            add_service_errors(form, error.errors)
        else:
            messages.success(request, f"Created {app.name}. Deploy it when you are ready.")
            return redirect("app", name=app.name)
    visible = presenters.listed_apps(access.visible_apps(request.user))
    return render(request, "deployments/app_list.html", {
        "rows": presenters.app_rows(visible, readings.live_health(visible)), "form": form,
    }, status=400 if form.errors else 200)


@app_action(access.DEPLOYER)
def deploy(request: HttpRequest, app) -> HttpResponse:
    ref = cleaned(DeployForm(request.POST), Refused(
        "The ref is too long: give a branch, tag or commit of at most 200 characters."))["ref"]
    deployment = deploys.deploy(app, ref=ref.strip() or None, actor=actor(request))
    return redirect("deployment", pk=deployment.pk)


SWITCH_MESSAGES = {  # field: (message when turned on, message when turned off)
    "zero_downtime": ("Zero-downtime deploys on.",
                      "Zero-downtime off: the next deploys stop the old release first (a short 503 gap)."),
    "auto_deploy": ("Pushes to the branch deploy automatically.",
                    "Auto-deploy off: deliveries are still recorded, nothing is deployed."),
}


def _flip(request: HttpRequest, app, field: str) -> str:
    enabled = request.POST.get("enabled") == "on"
    apps.set_switch(app, name=field, enabled=enabled, actor=actor(request))
    return SWITCH_MESSAGES[field][0 if enabled else 1]


@app_action(access.ADMIN)
def zero_downtime(request: HttpRequest, app) -> str:
    return _flip(request, app, "zero_downtime")


@app_action(access.ADMIN)
def auto_deploy(request: HttpRequest, app) -> str:
    return _flip(request, app, "auto_deploy")


@app_action(access.ADMIN)
def app_settings(request: HttpRequest, app) -> HttpResponse:
    return _submit(request, app, SettingsForm(request.POST, instance=app), "settings_form",
                   lambda data: apps.update_app(app, AppChanges(settings=data, domains=split_hosts(data["domains"])),
                                                actor=actor(request)),
                   "Settings saved. Domains apply now; the rest at the next deploy.")


def _submit(request: HttpRequest, app, form, context_key: str, act, done: str) -> HttpResponse:
    """Act on a valid form through the application layer; if the form or it refuses, the settings
    tab again (where both forms that use this are) with the form's errors (400), nothing changed."""
    if form.is_valid():
        try:
            act(form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, error.errors)
        else:
            messages.success(request, done)
            return redirect("app", name=app.name)
    app.refresh_from_db()
    return app_pages.render_tab(request, app, "settings", refused={context_key: form}, status=400)


@app_action(access.ADMIN)
def env_set(request: HttpRequest, app) -> str:
    data = cleaned(EnvVarForm(request.POST), Refused("An env var needs a name."))
    apps.set_env(app, key=data["key"], value=data["value"], actor=actor(request))
    return f"Saved {data['key']}; it applies at the next deploy."


@app_action(access.ADMIN)
def env_delete(request: HttpRequest, app, key: str) -> str:
    apps.delete_env(app, key=key, actor=actor(request))
    return f"Removed {key}; it applies at the next deploy."


@app_action(access.ADMIN)
def certificate_upload(request: HttpRequest, app) -> HttpResponse:
    return _submit(request, app, CertificateForm(request.POST), "certificate_form",
                   lambda data: domains.upload_certificate(app, chain_pem=data["certificate"], key_pem=data["key"],
                                                           actor=actor(request)),
                   "Certificate saved; HAProxy serves it within seconds.")


@app_action(access.ADMIN)
def certificate_acme(request: HttpRequest, app) -> str:
    if not domains.use_acme_certificate(app, actor=actor(request)):
        raise Refused("This app has no uploaded certificate.")
    return "The uploaded certificate is dropped; ACME issues one for the app's domains."


@app_action(access.ADMIN)
def member_set(request: HttpRequest, app) -> str:
    data = cleaned(MemberForm(request.POST), InvalidInput({"member": ["give a username and a role"]}))
    members.set_member(app, username=data["username"], role=data["role"], actor=actor(request))
    return f"{data['username']} is now {data['role']} of {app.name}."


@app_action(access.ADMIN)
def member_remove(request: HttpRequest, app, user_id: int) -> None:
    members.remove_member(app, user_id=user_id, actor=actor(request))


@app_action(access.ADMIN)
def app_delete(request: HttpRequest, app) -> HttpResponse:
    if request.POST.get("confirm") != app.name:
        raise Refused(f"Type {app.name} to confirm deleting it.")
    apps.delete_app(app.name, actor=actor(request))
    messages.success(request, f"Deleted {app.name}: its containers, routing and images are gone.")
    return redirect("apps")


@login_required
@require_GET
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deployment = access.deployment_for_user(request.user, pk)
    return render(request, "deployments/deployment_detail.html", presenters.deployment_page(request.user, deployment))


@login_required
@require_GET
def deployment_log(request: HttpRequest, pk: int) -> JsonResponse:
    """Stored lines after `after`, a page at a time (the WebSocket does the same live)."""
    deployment = access.deployment_for_user(request.user, pk)
    try:
        after = max(int(request.GET.get("after", 0)), 0)
    except ValueError:
        return JsonResponse({"detail": "after must be a whole number"}, status=400)
    lines = LogLine.objects.filter(deployment=deployment, seq__gt=after).order_by("seq")[:LOG_PAGE]
    return JsonResponse({"lines": [{"seq": line.seq, "text": line.text} for line in lines]})


@deployment_action(access.DEPLOYER)
def cancel(request: HttpRequest, deployment) -> str:
    deploys.cancel(deployment, actor=actor(request))
    return "Cancelling: new containers are removed, the running release keeps serving."


@deployment_action(access.DEPLOYER)
def promote(request: HttpRequest, deployment) -> str:
    deploys.promote(deployment, actor=actor(request))
    return "Promoted: the new release takes all the traffic; the old one drains and retires."


@deployment_action(access.DEPLOYER)
def abort(request: HttpRequest, deployment) -> str:
    deploys.abort(deployment, actor=actor(request))
    return "Aborted: all traffic goes back to the old release."


@deployment_action(access.DEPLOYER, back_to_app=True)
def redeploy(request: HttpRequest, source) -> HttpResponse:
    return redirect("deployment", pk=deploys.redeploy(source, actor=actor(request)).pk)


@app_action(access.ADMIN)
def webhook_secret(request: HttpRequest, app) -> JsonResponse:
    """The secret on request (a POST, so it is never in a page, a cache or a log)."""
    return JsonResponse({"secret": app.webhook_secret})


@app_action(access.ADMIN)
def deploy_key_rotate(request: HttpRequest, app) -> str:
    apps.rotate_deploy_key(app, actor=actor(request))
    return "New deploy key: add it at your git host and remove the old one, which no longer works here."


@app_action(access.ADMIN)
def webhook_rotate(request: HttpRequest, app) -> str:
    apps.rotate_webhook_secret(app, actor=actor(request))
    return "New webhook secret: update it at your git host, the old one no longer works."


@app_action(access.DEPLOYER)
def redeliver(request: HttpRequest, app, delivery_id: int) -> str:
    delivery = app.deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery")
    _, answer = pushes.redeliver(delivery, actor=actor(request))
    return f"Redelivered: {answer['detail']}"


@app_action(access.ADMIN)
def notification_add(request: HttpRequest, app) -> str:
    data = cleaned(NotificationTargetForm(request.POST))
    target = events.add_target(app, kind=data["kind"], url=data["url"], emails=data["emails"], on=data["events"],
                               actor=actor(request))
    return f"Deploy events now also go to {target.url or target.emails}."


@app_action(access.ADMIN)
def notification_delete(request: HttpRequest, app, target_id: int) -> str | None:
    return "Target removed." if events.delete_target(app, target_id=target_id, actor=actor(request)) else None


@app_action(access.ADMIN)
def commit_status_token(request: HttpRequest, app) -> str:
    events.set_commit_status_token(app, token=request.POST.get("token", ""), actor=actor(request))
    return "Commit status token saved." if app.encrypted_commit_status_token else "Commit status token removed."


@app_action(access.ADMIN)
def registry_credentials_save(request: HttpRequest, app) -> str:
    post = request.POST
    registry_credentials.set_registry_credentials(app, host=post.get("registry_host", ""),
                                                  username=post.get("registry_username", ""),
                                                  password=post.get("registry_password", ""), actor=actor(request))
    return (f"Registry credentials for {app.registry_host} saved." if app.registry_host
            else "Registry credentials removed.")


@app_action(access.ADMIN)
def event_redeliver(request: HttpRequest, app, delivery_id: int) -> str:
    copy = events.redeliver(app, delivery_id=delivery_id, actor=actor(request))
    return f"Sending it again as delivery #{copy.pk}."


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens; a new one is shown once, right after it is created."""
    new_token = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100] or "token"
        new_token = members.create_token(name=name, actor=actor(request))
    return render(request, "deployments/tokens.html", {
        "tokens": request.user.api_tokens.all(), "new_token": new_token,
    })


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if members.revoke_token(token_id=token_id, actor=actor(request)):
        messages.success(request, "Token revoked.")
    return redirect("tokens")


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every recorded action the user may see (all of them for superusers), newest first."""
    events = audit.visible_events(request.user)
    app_name = request.GET.get("app", "")
    if app_name:
        events = events.filter(app_name=app_name)
    return render(request, "deployments/audit.html", {"events": events[:AUDIT_PAGE], "app_name": app_name})

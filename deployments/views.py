"""Pages and actions of the panel: thin, the rules are in access.py and services.py."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from deployments import access, audit, notifications, presenters, services
from deployments.audit import Actor
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

LOG_PAGE = 1000
AUDIT_PAGE = 200


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, audit.Via.PANEL)


@login_required
def app_list(request: HttpRequest) -> HttpResponse:
    form = NewAppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        spec = services.AppSpec(**{k: v for k, v in data.items() if k != "domains"}, domains=split_hosts(data["domains"]))
        try:
            app = services.create_app(spec, _actor(request))
        except services.InvalidInput as error:
            add_service_errors(form, error.errors)
        else:
            messages.success(request, f"Created {app.name}. Deploy it when you are ready.")
            return redirect("app", name=app.name)
    apps = list(access.visible_apps(request.user).select_related("live_deployment").prefetch_related("domains"))
    return render(request, "deployments/app_list.html", {
        "rows": presenters.app_rows(apps, readings.live_health(apps)), "form": form,
    }, status=400 if form.errors else 200)


@login_required
@require_GET
def app_detail(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name)
    return render(request, "deployments/app_detail.html", _app_page(request, app))


def _app_page(request: HttpRequest, app) -> dict:
    context = presenters.app_page(request.user, app)
    context["webhook_url"] = request.build_absolute_uri(reverse("webhook", args=[app.name]))
    return context


@login_required
@require_POST
def deploy(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.DEPLOYER)
    form = DeployForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The ref is too long: give a branch, tag or commit of at most 200 characters.")
        return redirect("app", name=name)
    try:
        ref = form.cleaned_data["ref"].strip() or None
        deployment = services.deploy(app, ref, _actor(request))
    except services.InvalidInput as error:
        messages.error(request, str(error))
        return redirect("app", name=name)
    return redirect("deployment", pk=deployment.pk)


SWITCH_MESSAGES = {  # field: (message when turned on, message when turned off)
    "zero_downtime": ("Zero-downtime deploys on.",
                      "Zero-downtime off: the next deploys stop the old release first (a short 503 gap)."),
    "auto_deploy": ("Pushes to the branch deploy automatically.",
                    "Auto-deploy off: deliveries are still recorded, nothing is deployed."),
}


def _flip(request: HttpRequest, name: str, field: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    enabled = request.POST.get("enabled") == "on"
    services.set_switch(app, field, enabled, _actor(request))
    messages.success(request, SWITCH_MESSAGES[field][0 if enabled else 1])
    return redirect("app", name=name)


@login_required
@require_POST
def zero_downtime(request: HttpRequest, name: str) -> HttpResponse:
    return _flip(request, name, "zero_downtime")


@login_required
@require_POST
def app_settings(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    return _submit(request, app, SettingsForm(request.POST, instance=app), "settings_form",
                   lambda data: services.update_app(app, _actor(request), data, split_hosts(data["domains"])),
                   "Settings saved. Domains apply now; the rest at the next deploy.")


def _submit(request: HttpRequest, app, form, context_key: str, act, done: str) -> HttpResponse:
    """Act on a valid form through services; if the form or the service refuses, the app page
    again with the form's errors (400) and nothing changed."""
    if form.is_valid():
        try:
            act(form.cleaned_data)
        except services.InvalidInput as error:
            add_service_errors(form, error.errors)
        else:
            messages.success(request, done)
            return redirect("app", name=app.name)
    app.refresh_from_db()
    context = _app_page(request, app)
    context[context_key] = form
    return render(request, "deployments/app_detail.html", context, status=400)


@login_required
@require_POST
def env_set(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    form = EnvVarForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An env var needs a name.")
        return redirect("app", name=name)
    try:
        services.set_env(app, form.cleaned_data["key"], form.cleaned_data["value"], _actor(request))
    except services.InvalidInput as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Saved {form.cleaned_data['key']}; it applies at the next deploy.")
    return redirect("app", name=name)


@login_required
@require_POST
def certificate_upload(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    return _submit(request, app, CertificateForm(request.POST), "certificate_form",
                   lambda data: services.upload_certificate(app, _actor(request), data["certificate"], data["key"]),
                   "Certificate saved; HAProxy serves it within seconds.")


@login_required
@require_POST
def certificate_acme(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    if services.use_acme_certificate(app, _actor(request)):
        messages.success(request, "The uploaded certificate is dropped; ACME issues one for the app's domains.")
    else:
        messages.error(request, "This app has no uploaded certificate.")
    return redirect("app", name=name)


@login_required
@require_POST
def env_delete(request: HttpRequest, name: str, key: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    services.delete_env(app, key, _actor(request))
    messages.success(request, f"Removed {key}; it applies at the next deploy.")
    return redirect("app", name=name)


@login_required
@require_POST
def member_set(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    form = MemberForm(request.POST)
    try:
        if not form.is_valid():
            raise services.InvalidInput({"member": ["give a username and a role"]})
        services.set_member(app, form.cleaned_data["username"], form.cleaned_data["role"], _actor(request))
    except services.InvalidInput as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']} of {name}.")
    return redirect("app", name=name)


@login_required
@require_POST
def member_remove(request: HttpRequest, name: str, user_id: int) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    services.remove_member(app, user_id, _actor(request))
    return redirect("app", name=name)


@login_required
@require_POST
def app_delete(request: HttpRequest, name: str) -> HttpResponse:
    access.app_for_user(request.user, name, access.ADMIN)
    if request.POST.get("confirm") != name:
        messages.error(request, f"Type {name} to confirm deleting it.")
        return redirect("app", name=name)
    services.delete_app(name, _actor(request))
    messages.success(request, f"Deleted {name}: its containers, routing and images are gone.")
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


def _act_on_deployment(request: HttpRequest, pk: int, action, done: str) -> HttpResponse:
    """A deployer's action on a running deployment: the service says why if it cannot be done."""
    deployment = access.deployment_for_user(request.user, pk, access.DEPLOYER)
    try:
        action(deployment, _actor(request))
    except services.NotPossible as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("deployment", pk=pk)


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_deployment(request, pk, services.cancel,
                              "Cancelling: new containers are removed, the running release keeps serving.")


@login_required
@require_POST
def promote(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_deployment(request, pk, services.promote,
                              "Promoted: the new release takes all the traffic; the old one drains and retires.")


@login_required
@require_POST
def abort(request: HttpRequest, pk: int) -> HttpResponse:
    return _act_on_deployment(request, pk, services.abort, "Aborted: all traffic goes back to the old release.")


@login_required
@require_POST
def redeploy(request: HttpRequest, pk: int) -> HttpResponse:
    source = access.deployment_for_user(request.user, pk, access.DEPLOYER)
    try:
        deployment = services.redeploy(source, _actor(request))
    except services.NotPossible as error:
        messages.error(request, str(error))
        return redirect("app", name=source.app.name)
    return redirect("deployment", pk=deployment.pk)


@login_required
@require_POST
def auto_deploy(request: HttpRequest, name: str) -> HttpResponse:
    return _flip(request, name, "auto_deploy")


@login_required
@require_POST
def webhook_secret(request: HttpRequest, name: str) -> JsonResponse:
    """The secret on request (a POST, so it is never in a page, a cache or a log)."""
    app = access.app_for_user(request.user, name, access.ADMIN)
    return JsonResponse({"secret": app.webhook_secret})


@login_required
@require_POST
def deploy_key_rotate(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    services.rotate_deploy_key(app, _actor(request))
    messages.success(request, "New deploy key: add it at your git host and remove the old one, which no longer works here.")
    return redirect("app", name=name)


@login_required
@require_POST
def webhook_rotate(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    services.rotate_webhook_secret(app, _actor(request))
    messages.success(request, "New webhook secret: update it at your git host, the old one no longer works.")
    return redirect("app", name=name)


@login_required
@require_POST
def redeliver(request: HttpRequest, name: str, delivery_id: int) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.DEPLOYER)
    delivery = app.deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery")
    try:
        _, answer = services.redeliver(delivery, _actor(request))
    except services.NotPossible as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Redelivered: {answer['detail']}")
    return redirect("app", name=name)


@login_required
@require_POST
def notification_add(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    form = NotificationTargetForm(request.POST)
    try:
        if not form.is_valid():
            raise services.InvalidInput({field: list(errors) for field, errors in form.errors.items()})
        data = form.cleaned_data
        target = notifications.add_target(app, _actor(request), data["kind"], data["url"], data["emails"],
                                          data["events"])
    except services.InvalidInput as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Deploy events now also go to {target.url or target.emails}.")
    return redirect("app", name=name)


@login_required
@require_POST
def notification_delete(request: HttpRequest, name: str, target_id: int) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    if notifications.delete_target(app, _actor(request), target_id):
        messages.success(request, "Target removed.")
    return redirect("app", name=name)


@login_required
@require_POST
def commit_status_token(request: HttpRequest, name: str) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    try:
        notifications.set_commit_status_token(app, _actor(request), request.POST.get("token", ""))
    except services.InvalidInput as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Commit status token saved." if app.encrypted_commit_status_token
                         else "Commit status token removed.")
    return redirect("app", name=name)


@login_required
@require_POST
def event_redeliver(request: HttpRequest, name: str, delivery_id: int) -> HttpResponse:
    app = access.app_for_user(request.user, name, access.ADMIN)
    try:
        copy = notifications.redeliver(app, _actor(request), delivery_id)
    except services.NotPossible as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Sending it again as delivery #{copy.pk}.")
    return redirect("app", name=name)


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens; a new one is shown once, right after it is created."""
    new_token = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100] or "token"
        new_token = services.create_token(_actor(request), name)
    return render(request, "deployments/tokens.html", {
        "tokens": request.user.api_tokens.all(), "new_token": new_token,
    })


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if services.revoke_token(_actor(request), token_id):
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

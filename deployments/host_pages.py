"""The panel's hosts page (/hosts/): the fleet's machines, for superusers (anyone else: 404, as for
an app they cannot see). Adding a host, or asking for its new credential, shows the command that
starts its agent once, on the page that answers the form."""
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deployments.application import hosts
from deployments.application.errors import InvalidInput, NotPossible
from deployments.panel_actions import actor, outcome
from deployments.presenters import host_row


def _superuser(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise Http404("No such page")


@login_required
def hosts_page(request: HttpRequest) -> HttpResponse:
    _superuser(request)
    added, errors, typed = None, {}, {}
    if request.method == "POST":
        typed = {name: request.POST.get(name, "").strip() for name in ("name", "address", "labels")}
        try:
            added = hosts.add_host(name=typed["name"], address=typed["address"], labels=typed["labels"].split(),
                                   actor=actor(request))
            typed = {}
        except InvalidInput as refusal:
            errors = refusal.errors
        except NotPossible as refusal:
            return _render(request, problem=str(refusal), typed=typed)
    return _render(request, added=added, errors=errors, typed=typed)


@login_required
@require_POST
def host_credential(request: HttpRequest, name: str) -> HttpResponse:
    _superuser(request)
    try:
        added = hosts.new_credential(name=name, actor=actor(request))
    except (InvalidInput, NotPossible) as refusal:
        return _render(request, problem=str(refusal))
    return _render(request, added=added)


@login_required
@require_POST
def host_revoke(request: HttpRequest, name: str) -> HttpResponse:
    _superuser(request)
    return outcome(request, lambda: hosts.revoke_host(name=name, actor=actor(request)) and
                   f"Host {name}: credential revoked; its agent is cut off from the broker.",
                   back=lambda: redirect("hosts"))


@login_required
@require_POST
def host_remove(request: HttpRequest, name: str) -> HttpResponse:
    _superuser(request)
    return outcome(request, lambda: hosts.remove_host(name=name, actor=actor(request)) or f"Host {name} removed.",
                   back=lambda: redirect("hosts"))


def _render(request: HttpRequest, *, added=None, errors=None, problem: str = "", typed=None) -> HttpResponse:
    """The page; `errors` by form field, `problem` a refusal of the whole action."""
    return render(request, "deployments/hosts.html", {
        "rows": [host_row(host) for host in hosts.list_hosts()], "added": added,
        "errors": errors or {}, "problem": problem, "typed": typed or {},
    })

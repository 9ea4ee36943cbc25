"""The panel's actions written once: a POST on an app or a deployment finds it for the user with
the role the action needs (404 for outsiders, 403 below it), does the action, shows what came of
it and goes back to the page. A refusal of the application layer (application/errors.py) or of
the panel itself (`Refused`, e.g. a form it cannot read) becomes the page's error message, so a
view is only its action."""
import functools
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deployments import access, audit
from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor


class Refused(Exception):
    """The panel refuses before asking the application layer; the message is shown as it is."""


def actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, audit.Via.PANEL)


def cleaned(form: Form, refusal: Exception | None = None) -> dict:
    """The form's data, or `refusal` raised (by default the form's errors as InvalidInput)."""
    if form.is_valid():
        return form.cleaned_data
    raise refusal or InvalidInput({field: list(errors) for field, errors in form.errors.items()})


def app_action(role: str) -> Callable:
    """`view(request, app, **url_kwargs)` on the app named in the URL, for a user with `role`.
    It returns the success message (or None for none) and the panel goes back to the app's
    page, or it returns the response itself."""
    def decorate(view: Callable) -> Callable:
        @login_required
        @require_POST
        @functools.wraps(view)
        def action(request: HttpRequest, name: str, **kwargs) -> HttpResponse:
            app = access.app_for_user(request.user, name, role)
            return outcome(request, lambda: view(request, app, **kwargs), back=lambda: redirect("app", name=name))
        return action
    return decorate


def deployment_action(role: str, back_to_app: bool = False) -> Callable:
    """As app_action, on the deployment `pk` of the URL; back to its page (or, `back_to_app`,
    to its app's page)."""
    def decorate(view: Callable) -> Callable:
        @login_required
        @require_POST
        @functools.wraps(view)
        def action(request: HttpRequest, pk: int) -> HttpResponse:
            deployment = access.deployment_for_user(request.user, pk, role)
            back = (lambda: redirect("app", name=deployment.app.name)) if back_to_app else (
                lambda: redirect("deployment", pk=pk))
            return outcome(request, lambda: view(request, deployment), back=back)
        return action
    return decorate


def outcome(request: HttpRequest, act: Callable[[], str | HttpResponse | None],
            back: Callable[[], HttpResponse]) -> HttpResponse:
    """Do `act`: a refusal is the error message, a string it returns the success message; then
    `back`, unless it returned its own response."""
    try:
        result = act()
    except (InvalidInput, NotPossible, Refused) as refusal:
        messages.error(request, str(refusal))
        return back()
    if isinstance(result, HttpResponse):
        return result
    if result:
        messages.success(request, result)
    return back()

"""The app page: one URL per tab (/apps/NAME/ is the overview, /apps/NAME/settings/ the settings
and so on, app_tabs.TABS), each behind the same access check as the page it replaces, and the
way back from an action to the tab its form was on."""
from functools import wraps
from typing import Callable
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET

from deployments import access, app_tabs
from deployments.models import App

OVERVIEW = "overview"


class TabConverter:
    """The tabs besides the overview, as a path segment: any other word is a 404."""
    regex = "|".join(tab.slug for tab in app_tabs.TABS if tab.slug != OVERVIEW)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


def tab_url(name: str, slug: str) -> str:
    if slug == OVERVIEW:
        return reverse("app", kwargs={"name": name})
    return reverse("app_tab", kwargs={"name": name, "tab": slug})


@login_required
@require_GET
def app_tab(request: HttpRequest, name: str, tab: str = OVERVIEW) -> HttpResponse:
    """Any member sees every tab (outsiders get the 404 a missing app gets); what a tab offers
    to change depends on the role, as the actions behind it do."""
    app = access.app_for_user(request.user, name)
    return render_tab(request, app, tab)


def render_tab(request: HttpRequest, app: App, slug: str, *, refused: dict | None = None,
               status: int = 200) -> HttpResponse:
    """A tab of the app page; `refused` puts forms an action refused (bound, with their errors)
    in place of the empty ones, so what the person typed is still there."""
    tab = app_tabs.BY_SLUG[slug]
    context = {**app_tabs.header(request.user, app), **tab.context(request, app), **(refused or {})}
    context["tab"] = tab
    context["tabs"] = [{"slug": t.slug, "label": t.label, "url": tab_url(app.name, t.slug), "current": t is tab}
                       for t in app_tabs.TABS if context["can_admin"] or not t.admins_only or t is tab]
    return render(request, tab.template, context, status=status)


def returns_to(home: str, action: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`action` as it is, except that its redirect to the app page lands on a tab: the one the
    form named (a hidden `tab` field, for forms shown on several tabs) or else `home`, the tab
    its form is on. The actions keep saying "back to the app"; which tab that is, is decided here."""
    @wraps(action)
    def on_tab(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = action(request, *args, **kwargs)
        name = _app_redirected_to(response)
        if name is None:
            return response
        named = request.POST.get("tab", "")
        return redirect(tab_url(name, named if named in app_tabs.BY_SLUG else home))
    return on_tab


def _app_redirected_to(response: HttpResponse) -> str | None:
    """The app's name if `response` redirects to its overview, else None."""
    if response.status_code != 302:
        return None
    try:
        match = resolve(urlsplit(response["Location"]).path)
    except Resolver404:
        return None
    return match.kwargs["name"] if match.url_name == "app" else None

"""The app page's tabs: each at its own URL and marked current in the tab bar, the environment and
members tabs for admins only, GET only, and every action landing back on the tab its form is on."""
import re

import pytest

from deployments import app_pages
from deployments.application.app_settings import SETTINGS_FIELDS
from tests.support.panelworld import (APP, NEW_VALUE, ROLES, SECRET, TABS, TAB_PAGES, current_tab, db_state,
                                      messages_of, settings_data)

pytestmark = pytest.mark.usefixtures("dispatched")


@pytest.mark.parametrize("slug", TABS)
@pytest.mark.parametrize("role", ROLES)
def test_each_tab_has_its_own_url_and_is_marked_current_in_the_tab_bar(client, panel_world, role, slug):
    client.force_login(panel_world.users[role])
    url = app_pages.tab_url(APP, slug)

    response = client.get(url)

    assert response.status_code == 200
    assert url == (f"/apps/{APP}/" if slug == "overview" else f"/apps/{APP}/{slug}/")
    assert current_tab(response) == slug
    assert response.context["tab"].slug == slug


@pytest.mark.parametrize("role, shown", [("viewer", False), ("deployer", False), ("admin", True), ("owner", True),
                                         ("superuser", True)])
def test_the_environment_and_members_tabs_are_in_the_bar_of_admins_only(client, panel_world, role, shown):
    client.force_login(panel_world.users[role])

    bar = [tab["slug"] for tab in client.get(panel_world.url("app")).context["tabs"]]
    environment = client.get(panel_world.url("app_tab:environment")).content.decode()
    members = client.get(panel_world.url("app_tab:members")).content.decode()

    assert bar == [slug for slug in TABS if shown or slug not in ("environment", "members")]
    assert ("SECRET_TOKEN" in environment) is shown and SECRET not in environment
    assert (">viewer<" in members) is shown
    assert (f"Only {APP}'s admins see and change its environment variables" in environment) is not shown
    assert (f"Only {APP}'s admins see and change its members" in members) is not shown


def test_an_unknown_tab_is_not_found(client, panel_world):
    client.force_login(panel_world.users["owner"])

    assert client.get(f"/apps/{APP}/secrets/").status_code == 404
    assert client.get(f"/apps/{APP}/Settings/").status_code == 404


@pytest.mark.parametrize("name", TAB_PAGES)
def test_tabs_answer_get_only(client, panel_world, name):
    client.force_login(panel_world.users["owner"])
    before = db_state()

    assert client.post(panel_world.url(name)).status_code == 405
    assert db_state() == before


@pytest.mark.parametrize("tab, lands_on", [("logs", "logs"), ("deployments", "deployments"), ("overview", "overview"),
                                           ("nowhere", "overview"), ("//evil.example.com", "overview")])
def test_the_deploy_box_comes_back_to_the_tab_it_was_sent_from(client, panel_world, tab, lands_on):
    client.force_login(panel_world.users["deployer"])

    response = client.post(panel_world.url("deploy"), {"ref": "main; rm -rf /", "tab": tab})

    assert response.status_code == 302 and response.url == app_pages.tab_url(APP, lands_on)
    assert any("is not a usable git branch" in m for m in messages_of(response))


@pytest.mark.parametrize("action, data, tab, message", [
    ("env_set", {"key": "NEW_VAR", "value": NEW_VALUE}, "environment", "Saved NEW_VAR"),
    ("member_set", {"username": "outsider", "role": "viewer"}, "members", "outsider is now viewer"),
    ("zero_downtime", {}, "settings", "Zero-downtime off"),
    ("auto_deploy", {}, "webhooks", "Auto-deploy off"),
    ("webhook_rotate", {}, "webhooks", "New webhook secret"),
    ("deploy_key_rotate", {}, "settings", "New deploy key"),
    ("app_settings", None, "settings", "Settings saved"),
])
def test_an_action_lands_back_on_its_tab_with_its_message_shown_there(client, panel_world, redis_server, action, data, tab,
                                                                        message):
    client.force_login(panel_world.users["owner"])

    response = client.post(panel_world.url(action), settings_data(panel_world.app) if data is None else data, follow=True)

    assert response.redirect_chain == [(app_pages.tab_url(APP, tab), 302)]
    assert current_tab(response) == tab
    assert any(message in m.message for m in response.context["messages"])
    assert message.replace("'", "&#x27;") in response.content.decode()


def test_the_settings_tab_shows_the_form_in_named_groups(client, panel_world):
    client.force_login(panel_world.users["owner"])

    page = client.get(panel_world.url("app_tab:settings")).content.decode()

    headings = re.findall(r'<fieldset class="card settings-group" id="group-([a-z]+)">\s*<legend><h2>([^<]+)</h2>', page)
    assert headings == [("source", "Source"), ("health", "Health and watch"), ("canary", "Canary"),
                        ("limits", "Limits"), ("domains", "Domains and HTTPS")]
    fields = re.findall(r'name="([a-z_]+)"', page.split('id="settings-form"')[1].split("</form>")[0])
    assert sorted(set(fields) - {"csrfmiddlewaretoken"}) == sorted([*SETTINGS_FIELDS, "domains"])


def test_a_deployment_page_leads_back_to_its_apps_deployments_tab(client, panel_world):
    client.force_login(panel_world.users["viewer"])

    page = client.get(panel_world.url("deployment")).content.decode()

    assert f'<a href="/apps/{APP}/deployments/">Deployments</a>' in page

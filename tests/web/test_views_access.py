"""The panel's pages by who asks: anonymous visitors go to the login, outsiders get 404 (a hidden
app looks like a missing one), every role from viewer up reads, lower roles get 403 for actions
and see only the controls they may use, and each role's actions do what they say."""
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from deployments import presenters
from deployments.models import App, Deployment, Domain, Membership
from tests.support.panelworld import (ACTIONS, ADMINS, ADMIN_ACTIONS, APP, DEPLOYERS, DEPLOYER_ACTIONS, NEW_VALUE,
                                      PAGES, ROLES, ROUTES, TABS, TAB_PAGES, World, db_state, home_tab, messages_of,
                                      request)

pytestmark = pytest.mark.usefixtures("dispatched")


# Login ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, method", ROUTES)
def test_anonymous_visitor_is_redirected_to_login_for_every_page_and_action(client, panel_world, name, method):
    before = db_state()

    response = request(client, panel_world, name, method)

    assert response.status_code == 302
    assert response.url == f"/login/?next={quote(panel_world.url(name), safe='/')}"
    assert db_state() == before


# Outsiders -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, method", [(n, m) for n, m in ROUTES if n != "apps"] + [("deployment_log?after=abc", "get")])
def test_outsider_gets_404_for_every_app_page_and_action(client, panel_world, name, method):
    client.force_login(panel_world.users["outsider"])
    before = db_state()

    if name.endswith("?after=abc"):
        response = client.get(panel_world.url("deployment_log"), {"after": "abc"})
    else:
        response = request(client, panel_world, name, method)

    assert response.status_code == 404
    assert db_state() == before


@pytest.mark.parametrize("existing, missing", [
    (f"/apps/{APP}/", "/apps/no-such-app/"),
    *[(f"/apps/{APP}/{slug}/", f"/apps/no-such-app/{slug}/") for slug in TABS if slug != "overview"],
    (f"/apps/{APP}/settings", "/apps/no-such-app/settings"),
])
def test_outsider_cannot_tell_a_hidden_app_from_a_missing_one(client, panel_world, existing, missing):
    client.force_login(panel_world.users["outsider"])
    method = client.get if existing.endswith("/") else client.post

    hidden, absent = method(existing), method(missing)

    assert hidden.status_code == absent.status_code == 404
    assert hidden.content == absent.content
    assert APP.encode() not in hidden.content


@pytest.mark.parametrize("role, sees", [(role, True) for role in ROLES] + [("outsider", False)])
def test_apps_list_shows_only_apps_the_user_owns_or_is_member_of(client, panel_world, role, sees):
    App.objects.create(name="side-project", repo_url="/srv/side.git", owner=panel_world.users["outsider"])
    client.force_login(panel_world.users[role])

    response = client.get(reverse("apps"))

    assert response.status_code == 200
    names = [row["app"].name for row in response.context["rows"]]
    assert (APP in names) is sees
    assert (APP.encode() in response.content) is sees
    assert ("side-project" in names) is (role in ("outsider", "superuser"))


def test_the_apps_page_asks_the_database_as_often_for_ten_apps_as_for_one(client, panel_world):
    """Each row's newest deployment comes from one query for all of them (bench: 100 apps), and
    what a row shows is read with its app (presenters.LISTED_APP_FIELDS): the nine apps added
    have a live release and a domain, which the one at first has not."""
    client.force_login(panel_world.users["superuser"])

    def queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("apps"))
        return len(captured), [(row["app"].name, row["last"] and row["last"].state) for row in response.context["rows"]]

    one, rows = queries()
    assert rows == [(APP, Deployment.State.QUEUED)]  # the newest of its two deployments
    for number in range(9):
        app = App.objects.create(name=f"more-{number}", repo_url="/srv/more.git", owner=panel_world.users["owner"])
        live = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="c" * 40,
                                         finished_at=timezone.now())
        App.objects.filter(pk=app.pk).update(live_deployment=live)
        Domain.objects.create(app=app, hostname=f"more-{number}.example.com")
        Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED)
    ten, rows = queries()
    assert ten == one
    assert len(rows) == 10 and all(state == Deployment.State.FAILED for name, state in rows if name != APP)


@pytest.mark.parametrize("script_prefix", ["/", "/0/panel/"])
def test_each_apps_page_row_links_to_its_app_its_newest_deployment_and_its_hosts(client, panel_world, script_prefix):
    """The rows' links are made once per page (presenters._RowLinks), not by reverse() per row:
    they must be what reverse() makes, under a script prefix that looks like a placeholder too."""
    client.force_login(panel_world.users["superuser"])
    app = App.objects.create(name="a0-9", repo_url="/srv/more.git", owner=panel_world.users["owner"])
    for hostname in ("zz.example.com", "aa.example.com"):  # listed as created, as App.hostnames lists them
        Domain.objects.create(app=app, hostname=hostname)
    newest = Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED)

    page = reverse("apps")
    set_script_prefix(script_prefix)  # as a WSGI or ASGI handler sets it; the test client's leaves it
    try:
        rows = {row["app"].name: row for row in client.get(page).context["rows"]}
        links = reverse("app", args=["a0-9"]), reverse("deployment", args=[newest.pk])
    finally:
        set_script_prefix("/")

    row = rows["a0-9"]
    assert (row["href"], row["last_href"]) == links and row["href"].startswith(script_prefix)
    assert row["last_label"] == "Failed"
    assert [host for _, host in row["hosts"]] == app.hostnames() == ["a0-9.localhost", "zz.example.com",
                                                                        "aa.example.com"]


def test_the_apps_page_shows_each_rows_release_newest_deployment_and_health(client, panel_world):
    """What the rows' texts (made in presenters.app_rows) render to, for an app with a live
    release and one without."""
    client.force_login(panel_world.users["superuser"])
    live_app = App.objects.create(name="shown", repo_url="/srv/more.git", owner=panel_world.users["owner"])
    live = Deployment.objects.create(app=live_app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="d" * 40,
                                     finished_at=timezone.now())
    App.objects.filter(pk=live_app.pk).update(live_deployment=live)

    html = client.get(reverse("apps")).content.decode()

    shown = html[html.index('href="/apps/shown/"'):]
    shown = shown[:shown.index("</tr>")]
    assert f"<code>{'d' * 12}</code>" in shown and "minutes ago" in shown
    assert f'href="/deployments/{live.pk}/"' in shown and ">Succeeded<" in shown
    other = html[html.index(f'href="/apps/{APP}/"'):]
    other = other[:other.index("</tr>")]
    assert "none yet" in other and 'class="badge unknown">unknown<' in other  # no HAProxy answers here
    listed = presenters.listed_apps(App.objects.filter(name=APP))
    assert presenters.app_rows(listed, {APP: "no release"})[0]["health_class"] == "none"


# Roles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_from_viewer_up_sees_the_app_page_deployment_page_and_log(client, panel_world, role, page_name):
    client.force_login(panel_world.users[role])

    response = client.get(panel_world.url(page_name))

    assert response.status_code == 200
    if page_name == "deployment_log":
        assert [line["text"] for line in response.json()["lines"]] == ["line 1", "line 2", "line 3"]
    else:
        assert APP.encode() in response.content


@pytest.mark.parametrize("role, can_deploy, can_admin", [
    ("viewer", False, False), ("deployer", True, False), ("admin", True, True), ("owner", True, True),
    ("superuser", True, True),
])
def test_pages_show_only_the_controls_the_role_allows(client, panel_world, role, can_deploy, can_admin):
    client.force_login(panel_world.users[role])

    tabs = {name: client.get(panel_world.url(name)).content.decode() for name in TAB_PAGES}
    queued_page = client.get(reverse("deployment", kwargs={"pk": panel_world.queued.pk})).content.decode()

    assert all(('id="deploy-form"' in page) is can_deploy for page in tabs.values())
    assert ('id="settings-form"' in tabs["app_tab:settings"]) is can_admin
    assert ('id="env-form"' in tabs["app_tab:environment"]) is can_admin
    assert ('id="member-form"' in tabs["app_tab:members"]) is can_admin
    assert not any('id="settings-form"' in page or 'id="env-form"' in page
                   for name, page in tabs.items() if name not in ("app_tab:settings", "app_tab:environment"))
    assert ('id="cancel-form"' in queued_page) is can_deploy


@pytest.mark.parametrize("role, action", [("viewer", a) for a in ACTIONS] + [("deployer", a) for a in ADMIN_ACTIONS])
def test_a_role_below_the_one_an_action_needs_gets_403_and_changes_nothing(client, panel_world, role, action):
    client.force_login(panel_world.users[role])
    before = db_state()

    response = request(client, panel_world, action, "post")

    assert response.status_code == 403
    assert db_state() == before


def _assert_done(action: str, panel_world: World, user, response, dispatched: list[int]) -> None:
    """The action had its effect and answered with the right redirect."""
    if action in ("deploy", "redeploy"):
        new = Deployment.objects.exclude(pk__in=[panel_world.release.pk, panel_world.queued.pk]).get()
        assert (new.trigger, new.triggered_by, new.ref) == (Deployment.Trigger.UI, user.username, "main")
        if action == "redeploy":
            assert (new.redeploy_of_id, new.image) == (panel_world.release.pk, panel_world.release.image)
        else:
            assert new.redeploy_of_id is None
        assert response.url == reverse("deployment", kwargs={"pk": new.pk})
        assert dispatched == [new.pk]
        return
    assert dispatched == []
    if action == "cancel":
        panel_world.queued.refresh_from_db()
        assert (panel_world.queued.state, panel_world.queued.cancelled_by) == (Deployment.State.CANCELLED, user.username)
        assert response.url == reverse("deployment", kwargs={"pk": panel_world.queued.pk})
    elif action == "app_delete":
        assert not App.objects.filter(name=APP).exists()
        assert not Deployment.objects.filter(app_id=panel_world.app.pk).exists()
        assert response.url == reverse("apps")
    else:
        app = App.objects.get(name=APP)
        if action == "zero_downtime":
            assert app.zero_downtime is False
        elif action == "app_settings":
            assert app.port == 9000
            assert list(app.domains.values_list("hostname", flat=True)) == ["billing.example.com"]
        elif action == "env_set":
            assert app.env_vars.get(key="NEW_VAR").value == NEW_VALUE
        elif action == "env_delete":
            assert not app.env_vars.filter(key="SECRET_TOKEN").exists()
        elif action == "member_set":
            assert app.memberships.get(user=panel_world.users["outsider"]).role == Membership.Role.ADMIN
        elif action == "member_remove":
            assert not app.memberships.filter(user=panel_world.users["viewer"]).exists()
        else:
            raise AssertionError(f"no check for {action}")
        assert response.url == home_tab(action)


@pytest.mark.parametrize("action", DEPLOYER_ACTIONS)
@pytest.mark.parametrize("role", DEPLOYERS)
def test_deployer_admin_owner_and_superuser_can_deploy_cancel_and_redeploy(client, panel_world, redis_server, dispatched,
                                                                          monkeypatch, role, action):
    client.force_login(panel_world.users[role])

    response = request(client, panel_world, action, "post")

    assert response.status_code == 302
    _assert_done(action, panel_world, panel_world.users[role], response, dispatched)


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
@pytest.mark.parametrize("role", ADMINS)
def test_admin_member_owner_and_superuser_can_do_every_admin_action(client, panel_world, redis_server, dispatched, role,
                                                                    action):
    client.force_login(panel_world.users[role])

    response = request(client, panel_world, action, "post")

    assert response.status_code == 302
    _assert_done(action, panel_world, panel_world.users[role], response, dispatched)


def test_adding_and_removing_a_member_grants_and_revokes_access(client, panel_world, redis_server, dispatched):
    outsider, viewer = Client(), Client()
    outsider.force_login(panel_world.users["outsider"])
    viewer.force_login(panel_world.users["viewer"])
    client.force_login(panel_world.users["owner"])
    assert outsider.get(panel_world.url("app")).status_code == 404

    client.post(panel_world.url("member_set"), {"username": "outsider", "role": "deployer"})
    client.post(panel_world.url("member_remove"))

    assert outsider.get(panel_world.url("app")).status_code == 200
    assert outsider.post(panel_world.url("deploy"), {"ref": "main"}).status_code == 302
    assert len(dispatched) == 1
    assert outsider.post(panel_world.url("zero_downtime")).status_code == 403
    assert viewer.get(panel_world.url("app")).status_code == 404
    assert viewer.get(panel_world.url("deployment")).status_code == 404


@pytest.mark.parametrize("data, message", [
    ({"username": "nobody", "role": "viewer"}, "there is no user 'nobody'"),
    ({"username": "owner", "role": "viewer"}, "owns the app"),
    ({"username": "outsider", "role": "root"}, "give a username and a role"),
    ({"username": "", "role": "admin"}, "give a username and a role"),
])
def test_member_set_with_bad_input_explains_and_changes_nothing(client, panel_world, data, message):
    client.force_login(panel_world.users["admin"])
    before = db_state()

    response = client.post(panel_world.url("member_set"), data)

    assert response.status_code == 302 and response.url == home_tab("member_set")
    assert any(message in m for m in messages_of(response))
    assert db_state() == before


def test_member_set_changes_the_role_of_an_existing_member(client, panel_world):
    client.force_login(panel_world.users["owner"])

    client.post(panel_world.url("member_set"), {"username": "viewer", "role": "admin"})

    assert Membership.objects.get(app=panel_world.app, user=panel_world.users["viewer"]).role == Membership.Role.ADMIN
    assert Membership.objects.filter(app=panel_world.app).count() == 3

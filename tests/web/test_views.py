"""The panel's pages and actions: login, who sees what (outsiders get 404, lower roles 403),
and that every action does what it says, or nothing at all when it refuses."""
import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import app_pages, app_tabs, enqueue
from deployments.application import domains
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.git import source
from deployments.haproxy.config import render_map
from deployments.models import App, Certificate, Deployment, Domain, EnvVar, LogLine, Membership
from deployments.traffic import rows, target
from tests.support.tls import PrivateCA
from deployments.views import LOG_PAGE

APP = "billing-api"
SECRET = "s3cr3t-token-value-7731"
NEW_VALUE = "plain-new-value-4242"

TABS = [tab.slug for tab in app_tabs.TABS]
# The app page's tabs: "app" is the overview, "app_tab:settings" /apps/NAME/settings/ and so on.
TAB_PAGES = ["app"] + [f"app_tab:{slug}" for slug in TABS if slug != "overview"]
PAGES = [*TAB_PAGES, "deployment", "deployment_log"]
DEPLOYER_ACTIONS = ["deploy", "cancel", "redeploy"]
ADMIN_ACTIONS = ["zero_downtime", "app_settings", "env_set", "env_delete", "member_set", "member_remove", "app_delete"]
ACTIONS = DEPLOYER_ACTIONS + ADMIN_ACTIONS
# Every route of deployments/urls.py with the method it answers.
ROUTES = ([("apps", "get"), ("apps", "post")] + [(page, "get") for page in PAGES]
          + [(action, "post") for action in ACTIONS])
ROLES = ["viewer", "deployer", "admin", "owner", "superuser"]
ADMINS = ["admin", "owner", "superuser"]
DEPLOYERS = ["deployer", *ADMINS]


@dataclass
class World:
    users: dict
    app: App
    release: Deployment  # succeeded, with an image; has log lines
    queued: Deployment

    def url(self, name: str) -> str:
        if name.startswith("app_tab:"):
            return reverse("app_tab", kwargs={"name": APP, "tab": name.removeprefix("app_tab:")})
        kwargs = {
            "apps": {},
            "env_delete": {"name": APP, "key": "SECRET_TOKEN"},
            "member_remove": {"name": APP, "user_id": self.users["viewer"].pk},
            "deployment": {"pk": self.release.pk},
            "deployment_log": {"pk": self.release.pk},
            "redeploy": {"pk": self.release.pk},
            "cancel": {"pk": self.queued.pk},
        }.get(name, {"name": APP})
        return reverse(name, kwargs=kwargs)

    def data(self, name: str) -> dict:
        """POST data that makes the action do something."""
        return {
            "apps": {"name": "new-app", "repo_url": self.app.repo_url, "branch": "main", "dockerfile": "Dockerfile",
                     "port": "8000", "health_path": "/health", "domains": ""},
            "deploy": {"ref": "main"},
            "zero_downtime": {},  # unchecked: turns it off (it is on)
            "app_settings": settings_data(self.app, port="9000", domains="billing.example.com"),
            "env_set": {"key": "NEW_VAR", "value": NEW_VALUE},
            "member_set": {"username": "outsider", "role": "admin"},
            "app_delete": {"confirm": APP},
        }.get(name, {})


def settings_data(app: App, **changes) -> dict:
    data = {name: getattr(app, name) for name in SETTINGS_FIELDS}
    data["domains"] = " ".join(app.domains.values_list("hostname", flat=True))
    return {**data, **changes}


def db_state() -> dict:
    """Everything an action could change."""
    return {
        "apps": list(App.objects.order_by("pk").values()),
        "deployments": list(Deployment.objects.order_by("pk").values()),
        "env": list(EnvVar.objects.order_by("pk").values()),
        "members": list(Membership.objects.order_by("pk").values()),
        "domains": list(Domain.objects.order_by("pk").values()),
        "users": list(get_user_model().objects.order_by("pk").values_list("pk", "username")),
    }


ROUTING = ("deployments.tasks.apply_routing", ())


def routed(entry: str) -> bool:
    """Whether the map the worker writes from the database has `entry` ("host backend")."""
    return entry in render_map(rows.app_routes())


def haproxy_files() -> tuple[str | None, str | None]:
    location = target.paths()
    return tuple(p.read_text() if p.exists() else None for p in (location.config, location.hosts_map))


def request(client: Client, world: World, name: str, method: str, **extra):
    if method == "get":
        return client.get(world.url(name), **extra)
    return client.post(world.url(name), world.data(name), **extra)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture(autouse=True)
def dispatched(monkeypatch) -> list[int]:
    """Ids of deployments handed to the queue, in every test here. Recorded instead of sent:
    a Celery worker left running by an earlier test of the session would build and start them."""
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


@pytest.fixture
def world(committed_per_request, redis_server, django_user_model, released_repo, handed_over) -> World:
    users = {name: django_user_model.objects.create_user(name) for name in ("owner", "viewer", "deployer", "admin", "outsider")}
    users["superuser"] = django_user_model.objects.create_superuser("root")
    app = App.objects.create(name=APP, repo_url=released_repo.url, owner=users["owner"])
    # The rolled-back database of an earlier test gave its app this id too: its upload's pause
    # (kept in the suite's Redis, not rolled back) is not this app's.
    cache.delete(domains.certificate_upload_key(app))
    for role in ("viewer", "deployer", "admin"):
        Membership.objects.create(app=app, user=users[role], role=role)
    EnvVar(app=app, key="SECRET_TOKEN", value=SECRET).save()
    release = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="a" * 40,
                                        image=f"switchyard/{APP}:aaaaaaaaaaaa")
    LogLine.objects.bulk_create(LogLine(deployment=release, seq=seq, text=f"line {seq}") for seq in (3, 1, 2))
    queued = Deployment.objects.create(app=app, ref="main", state=Deployment.State.QUEUED)
    return World(users=users, app=app, release=release, queued=queued)


# Login ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, method", ROUTES)
def test_anonymous_visitor_is_redirected_to_login_for_every_page_and_action(client, world, name, method):
    before = db_state()

    response = request(client, world, name, method)

    assert response.status_code == 302
    assert response.url == f"/login/?next={quote(world.url(name), safe='/')}"
    assert db_state() == before


# Outsiders -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, method", [(n, m) for n, m in ROUTES if n != "apps"] + [("deployment_log?after=abc", "get")])
def test_outsider_gets_404_for_every_app_page_and_action(client, world, name, method):
    client.force_login(world.users["outsider"])
    before = db_state()

    if name.endswith("?after=abc"):
        response = client.get(world.url("deployment_log"), {"after": "abc"})
    else:
        response = request(client, world, name, method)

    assert response.status_code == 404
    assert db_state() == before


@pytest.mark.parametrize("existing, missing", [
    (f"/apps/{APP}/", "/apps/no-such-app/"),
    *[(f"/apps/{APP}/{slug}/", f"/apps/no-such-app/{slug}/") for slug in TABS if slug != "overview"],
    (f"/apps/{APP}/settings", "/apps/no-such-app/settings"),
])
def test_outsider_cannot_tell_a_hidden_app_from_a_missing_one(client, world, existing, missing):
    client.force_login(world.users["outsider"])
    method = client.get if existing.endswith("/") else client.post

    hidden, absent = method(existing), method(missing)

    assert hidden.status_code == absent.status_code == 404
    assert hidden.content == absent.content
    assert APP.encode() not in hidden.content


@pytest.mark.parametrize("role, sees", [(role, True) for role in ROLES] + [("outsider", False)])
def test_apps_list_shows_only_apps_the_user_owns_or_is_member_of(client, world, role, sees):
    App.objects.create(name="side-project", repo_url="/srv/side.git", owner=world.users["outsider"])
    client.force_login(world.users[role])

    response = client.get(reverse("apps"))

    assert response.status_code == 200
    names = [row["app"].name for row in response.context["rows"]]
    assert (APP in names) is sees
    assert (APP.encode() in response.content) is sees
    assert ("side-project" in names) is (role in ("outsider", "superuser"))


def test_the_apps_page_asks_the_database_as_often_for_ten_apps_as_for_one(client, world):
    """Each row's newest deployment comes from one query for all of them (bench: 100 apps)."""
    client.force_login(world.users["superuser"])

    def queries() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("apps"))
        return len(captured), [(row["app"].name, row["last"] and row["last"].state) for row in response.context["rows"]]

    one, rows = queries()
    assert rows == [(APP, Deployment.State.QUEUED)]  # the newest of its two deployments
    for number in range(9):
        app = App.objects.create(name=f"more-{number}", repo_url="/srv/more.git", owner=world.users["owner"])
        Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED)
    ten, rows = queries()
    assert ten == one
    assert len(rows) == 10 and all(state == Deployment.State.FAILED for name, state in rows if name != APP)


# Roles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_from_viewer_up_sees_the_app_page_deployment_page_and_log(client, world, role, page):
    client.force_login(world.users[role])

    response = client.get(world.url(page))

    assert response.status_code == 200
    if page == "deployment_log":
        assert [line["text"] for line in response.json()["lines"]] == ["line 1", "line 2", "line 3"]
    else:
        assert APP.encode() in response.content


@pytest.mark.parametrize("role, can_deploy, can_admin", [
    ("viewer", False, False), ("deployer", True, False), ("admin", True, True), ("owner", True, True),
    ("superuser", True, True),
])
def test_pages_show_only_the_controls_the_role_allows(client, world, role, can_deploy, can_admin):
    client.force_login(world.users[role])

    tabs = {name: client.get(world.url(name)).content.decode() for name in TAB_PAGES}
    queued_page = client.get(reverse("deployment", kwargs={"pk": world.queued.pk})).content.decode()

    assert all(('id="deploy-form"' in page) is can_deploy for page in tabs.values())
    assert ('id="settings-form"' in tabs["app_tab:settings"]) is can_admin
    assert ('id="env-form"' in tabs["app_tab:environment"]) is can_admin
    assert ('id="member-form"' in tabs["app_tab:members"]) is can_admin
    assert not any('id="settings-form"' in page or 'id="env-form"' in page
                   for name, page in tabs.items() if name not in ("app_tab:settings", "app_tab:environment"))
    assert ('id="cancel-form"' in queued_page) is can_deploy


@pytest.mark.parametrize("role, action", [("viewer", a) for a in ACTIONS] + [("deployer", a) for a in ADMIN_ACTIONS])
def test_a_role_below_the_one_an_action_needs_gets_403_and_changes_nothing(client, world, role, action):
    client.force_login(world.users[role])
    before = db_state()

    response = request(client, world, action, "post")

    assert response.status_code == 403
    assert db_state() == before


# The tab an action's form is on, where the action comes back to.
HOME_TABS = {"zero_downtime": "settings", "app_settings": "settings", "env_set": "environment",
             "env_delete": "environment", "member_set": "members", "member_remove": "members", "app_delete": "settings",
             "redeploy": "deployments"}


def home_tab(action: str) -> str:
    return reverse("app_tab", kwargs={"name": APP, "tab": HOME_TABS[action]})


def _assert_done(action: str, world: World, user, response, dispatched: list[int]) -> None:
    """The action had its effect and answered with the right redirect."""
    if action in ("deploy", "redeploy"):
        new = Deployment.objects.exclude(pk__in=[world.release.pk, world.queued.pk]).get()
        assert (new.trigger, new.triggered_by, new.ref) == (Deployment.Trigger.UI, user.username, "main")
        if action == "redeploy":
            assert (new.redeploy_of_id, new.image) == (world.release.pk, world.release.image)
        else:
            assert new.redeploy_of_id is None
        assert response.url == reverse("deployment", kwargs={"pk": new.pk})
        assert dispatched == [new.pk]
        return
    assert dispatched == []
    if action == "cancel":
        world.queued.refresh_from_db()
        assert (world.queued.state, world.queued.cancelled_by) == (Deployment.State.CANCELLED, user.username)
        assert response.url == reverse("deployment", kwargs={"pk": world.queued.pk})
    elif action == "app_delete":
        assert not App.objects.filter(name=APP).exists()
        assert not Deployment.objects.filter(app_id=world.app.pk).exists()
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
            assert app.memberships.get(user=world.users["outsider"]).role == Membership.Role.ADMIN
        elif action == "member_remove":
            assert not app.memberships.filter(user=world.users["viewer"]).exists()
        else:
            raise AssertionError(f"no check for {action}")
        assert response.url == home_tab(action)


@pytest.mark.parametrize("action", DEPLOYER_ACTIONS)
@pytest.mark.parametrize("role", DEPLOYERS)
def test_deployer_admin_owner_and_superuser_can_deploy_cancel_and_redeploy(client, world, redis_server, dispatched,
                                                                          monkeypatch, role, action):
    client.force_login(world.users[role])

    response = request(client, world, action, "post")

    assert response.status_code == 302
    _assert_done(action, world, world.users[role], response, dispatched)


@pytest.mark.parametrize("action", ADMIN_ACTIONS)
@pytest.mark.parametrize("role", ADMINS)
def test_admin_member_owner_and_superuser_can_do_every_admin_action(client, world, redis_server, dispatched, role,
                                                                    action):
    client.force_login(world.users[role])

    response = request(client, world, action, "post")

    assert response.status_code == 302
    _assert_done(action, world, world.users[role], response, dispatched)


def test_adding_and_removing_a_member_grants_and_revokes_access(client, world, redis_server, dispatched):
    outsider, viewer = Client(), Client()
    outsider.force_login(world.users["outsider"])
    viewer.force_login(world.users["viewer"])
    client.force_login(world.users["owner"])
    assert outsider.get(world.url("app")).status_code == 404

    client.post(world.url("member_set"), {"username": "outsider", "role": "deployer"})
    client.post(world.url("member_remove"))

    assert outsider.get(world.url("app")).status_code == 200
    assert outsider.post(world.url("deploy"), {"ref": "main"}).status_code == 302
    assert len(dispatched) == 1
    assert outsider.post(world.url("zero_downtime")).status_code == 403
    assert viewer.get(world.url("app")).status_code == 404
    assert viewer.get(world.url("deployment")).status_code == 404


@pytest.mark.parametrize("data, message", [
    ({"username": "nobody", "role": "viewer"}, "there is no user 'nobody'"),
    ({"username": "owner", "role": "viewer"}, "owns the app"),
    ({"username": "outsider", "role": "root"}, "give a username and a role"),
    ({"username": "", "role": "admin"}, "give a username and a role"),
])
def test_member_set_with_bad_input_explains_and_changes_nothing(client, world, data, message):
    client.force_login(world.users["admin"])
    before = db_state()

    response = client.post(world.url("member_set"), data)

    assert response.status_code == 302 and response.url == home_tab("member_set")
    assert any(message in m for m in messages_of(response))
    assert db_state() == before


def test_member_set_changes_the_role_of_an_existing_member(client, world):
    client.force_login(world.users["owner"])

    client.post(world.url("member_set"), {"username": "viewer", "role": "admin"})

    assert Membership.objects.get(app=world.app, user=world.users["viewer"]).role == Membership.Role.ADMIN
    assert Membership.objects.filter(app=world.app).count() == 3


# Actions in detail ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTIONS)
def test_actions_refuse_get_and_change_nothing(client, world, name):
    client.force_login(world.users["owner"])
    before = db_state()

    response = client.get(world.url(name))

    assert response.status_code == 405
    assert db_state() == before


@pytest.mark.parametrize("name", ["apps", *ACTIONS])
def test_posts_without_a_csrf_token_are_refused_and_change_nothing(world, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["owner"])
    before = db_state()

    response = client.post(world.url(name), world.data(name))

    assert response.status_code == 403
    assert db_state() == before


def test_zero_downtime_switch_turns_off_and_on(client, world):
    client.force_login(world.users["admin"])

    client.post(world.url("zero_downtime"))
    off = App.objects.get(pk=world.app.pk).zero_downtime
    client.post(world.url("zero_downtime"), {"enabled": "on"})

    assert off is False
    assert App.objects.get(pk=world.app.pk).zero_downtime is True


def test_deploy_rejects_a_ref_with_shell_characters_and_queues_nothing(client, world):
    client.force_login(world.users["deployer"])
    before = db_state()

    response = client.post(world.url("deploy"), {"ref": "main; rm -rf /"})

    assert response.status_code == 302 and response.url == world.url("app")
    assert any("is not a usable git branch" in m for m in messages_of(response))
    assert db_state() == before


def test_deploy_with_an_overlong_ref_explains_and_queues_nothing(client, world, dispatched):
    client.force_login(world.users["deployer"])
    before = db_state()

    response = client.post(world.url("deploy"), {"ref": "a" * 201})

    assert response.status_code == 302 and response.url == world.url("app")
    assert any("ref is too long" in m for m in messages_of(response))
    assert db_state() == before and dispatched == []


@pytest.mark.parametrize("path", ["/apps/billing-api/members/99999999999999999999/delete",
                                  "/deployments/99999999999999999999/cancel"])
def test_ids_beyond_the_database_range_are_not_found(client, world, path):
    client.force_login(world.users["owner"])
    before = db_state()

    assert client.post(path).status_code == 404
    assert db_state() == before


def test_cancelling_a_finished_deployment_explains_and_changes_nothing(client, world):
    client.force_login(world.users["deployer"])
    before = db_state()

    response = client.post(reverse("cancel", kwargs={"pk": world.release.pk}))

    assert response.status_code == 302 and response.url == world.url("deployment")
    assert any("already ended" in m for m in messages_of(response))
    assert db_state() == before


@pytest.mark.parametrize("role", DEPLOYERS)
def test_redeploying_a_release_whose_image_was_pruned_explains_and_queues_nothing(client, world, redis_server,
                                                                                  settings, role):
    for n in range(settings.SWITCHYARD["KEEP_IMAGES"]):  # newer successes: the release's image was pruned
        Deployment.objects.create(app=world.app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha=f"{n}" * 40,
                                  image=f"switchyard/{APP}:{n}", finished_at=timezone.now())
    client.force_login(world.users[role])
    before = db_state()

    response = client.post(world.url("redeploy"))

    assert response.status_code == 302 and response.url == home_tab("redeploy")
    assert any("is no longer kept" in m for m in messages_of(response))
    assert db_state() == before


def test_redeploying_a_deployment_that_did_not_succeed_explains_and_queues_nothing(client, world, redis_server):
    client.force_login(world.users["owner"])
    before = db_state()

    response = client.post(reverse("redeploy", kwargs={"pk": world.queued.pk}))

    assert response.status_code == 302 and response.url == home_tab("redeploy")
    assert any("did not succeed" in m for m in messages_of(response))
    assert db_state() == before


# Env vars ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ADMINS)
def test_env_var_values_are_stored_encrypted_and_never_shown_on_the_app_page(client, world, role):
    client.force_login(world.users[role])

    response = client.post(world.url("env_set"), {"key": "NEW_VAR", "value": NEW_VALUE}, follow=True)

    assert response.status_code == 200
    stored = dict(EnvVar.objects.filter(app=world.app).values_list("key", "encrypted_value"))
    assert set(stored) == {"SECRET_TOKEN", "NEW_VAR"}
    assert NEW_VALUE not in stored["NEW_VAR"] and SECRET not in stored["SECRET_TOKEN"]
    assert EnvVar.objects.get(app=world.app, key="NEW_VAR").value == NEW_VALUE
    page = response.content.decode()
    assert "NEW_VAR" in page and "SECRET_TOKEN" in page
    assert NEW_VALUE not in page and SECRET not in page


def test_setting_an_existing_env_var_replaces_its_value(client, world):
    client.force_login(world.users["admin"])

    client.post(world.url("env_set"), {"key": "SECRET_TOKEN", "value": "rotated"})

    assert [var.value for var in EnvVar.objects.filter(app=world.app, key="SECRET_TOKEN")] == ["rotated"]


@pytest.mark.parametrize("data", [{"key": "1BAD", "value": "x"}, {"key": "A-B", "value": "x"}, {"key": "", "value": "x"}])
def test_env_set_with_a_bad_name_explains_and_changes_nothing(client, world, data):
    client.force_login(world.users["admin"])
    before = db_state()

    response = client.post(world.url("env_set"), data)

    assert response.status_code == 302 and response.url == home_tab("env_set")
    assert messages_of(response) and "Saved" not in messages_of(response)[0]
    assert db_state() == before


# Settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, error", [
    ({"port": "70000"}, "Ensure this value is less than or equal to 65535."),
    ({"port": "0"}, "Ensure this value is greater than or equal to 1."),
    ({"replicas": "99"}, "Ensure this value is less than or equal to 8."),
    ({"health_path": "health"}, "is not a health check path"),
    ({"repo_url": "--upload-pack=touch /tmp/pwned"}, "is not a git repository URL"),
    ({"port": "9000", "domains": "not a host!"}, "is not a hostname"),
    ({"port": "9000", "domains": "shop.example.com"}, "is already a domain of another app"),
    ({"port": "9000", "domains": "x.billing-api.localhost"}, "names are reserved"),
    ({"port": "9000", "branch": "release"}, "branch &#x27;release&#x27; does not exist"),
    ({"health_host": "x.com\n    server evil 127.0.0.2:80"}, "is not a Host header"),
    ({"health_host": "two words"}, "is not a Host header"),
    ({"health_host": "app.example.com:99999"}, "has a port that is not 1-65535"),
])
def test_settings_errors_rerender_with_400_and_change_nothing(client, world, redis_server, changes, error):
    other = App.objects.create(name="shop", repo_url="/srv/shop.git")
    Domain.objects.create(app=other, hostname="shop.example.com")
    client.force_login(world.users["admin"])
    before, files_before = db_state(), haproxy_files()

    response = client.post(world.url("app_settings"), settings_data(world.app, **changes))

    assert response.status_code == 400
    assert error in response.content.decode()
    assert response.context["settings_form"].errors
    assert current_tab(response) == "settings"
    for field, typed in changes.items():  # what was typed is still there to correct
        assert response.context["settings_form"][field].value() == typed
    assert SECRET not in response.content.decode()
    assert db_state() == before
    assert haproxy_files() == files_before


def test_saved_domains_are_handed_to_the_worker_to_route(client, world, redis_server, handed_over):
    client.force_login(world.users["owner"])

    response = client.post(world.url("app_settings"), settings_data(world.app, domains="Pay.Example.com api.example.com"))

    assert response.status_code == 302
    assert sorted(Domain.objects.filter(app=world.app).values_list("hostname", flat=True)) == [
        "api.example.com", "pay.example.com"]
    assert routed("pay.example.com app_billing-api_blue") and routed("api.example.com app_billing-api_blue")
    assert ROUTING in handed_over


# Delete --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [{}, {"confirm": ""}, {"confirm": "wrong"}, {"confirm": APP.upper()},
                                  {"confirm": f"{APP} "}])
def test_app_delete_needs_the_app_name_typed_to_confirm(client, world, data):
    client.force_login(world.users["owner"])
    before = db_state()

    response = client.post(world.url("app_delete"), data)

    assert response.status_code == 302 and response.url == home_tab("app_delete")
    assert any(f"Type {APP} to confirm" in m for m in messages_of(response))
    assert db_state() == before


def test_a_deleted_app_is_gone_from_its_pages_and_the_list(client, world, redis_server, handed_over):
    client.force_login(world.users["owner"])

    client.post(world.url("app_delete"), {"confirm": APP})

    assert client.get(world.url("app")).status_code == 404
    assert client.get(world.url("deployment")).status_code == 404
    assert APP not in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    assert not routed(f"{APP}.localhost") and ROUTING in handed_over


# Creating apps -------------------------------------------------------------------------------

def _new_app(repo_url: str, changes: dict | None = None) -> dict:
    return {"name": "new-app", "repo_url": repo_url, "branch": "main", "dockerfile": "Dockerfile", "port": "8000",
            "health_path": "/health", "domains": "new.example.com", **(changes or {})}


def test_creating_an_app_on_the_apps_page_makes_the_creator_its_owner(client, world, redis_server, monkeypatch,
                                                                      handed_over):
    creator = world.users["outsider"]
    client.force_login(creator)
    # An ordinary user needs a remote repository; none is reachable here, so the remote answers as git would.
    monkeypatch.setattr(source, "remote_branches", lambda url, access=None: ["main"])

    response = client.post(reverse("apps"), _new_app("https://git.example.com/team/new-app.git"))

    assert response.status_code == 302 and response.url == reverse("app", kwargs={"name": "new-app"})
    app = App.objects.get(name="new-app")
    assert app.owner == creator
    assert list(app.domains.values_list("hostname", flat=True)) == ["new.example.com"]
    assert routed("new.example.com app_new-app_blue") and ROUTING in handed_over
    assert client.get(response.url).context["role"] == Membership.Role.ADMIN
    assert "new-app" in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    client.force_login(world.users["viewer"])
    assert "new-app" not in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    assert client.get(reverse("app", kwargs={"name": "new-app"})).status_code == 404


def test_creating_a_compose_app_on_the_apps_page_stores_its_file_web_service_and_port(client, world, redis_server,
                                                                                     monkeypatch, handed_over):
    client.force_login(world.users["outsider"])
    monkeypatch.setattr(source, "remote_branches", lambda url, access=None: ["main"])
    monkeypatch.setattr(source, "read_remote_file", lambda *args: "services: {front: {build: .}}")

    response = client.post(reverse("apps"), _new_app("https://git.example.com/team/counter.git", {
        "compose_file": "deploy/compose.yaml", "web_service": "front", "port": "3000"}))

    assert response.status_code == 302, response.context["form"].errors
    app = App.objects.get(name="new-app")
    assert (app.compose_file, app.web_service, app.port) == ("deploy/compose.yaml", "front", 3000)


@pytest.mark.parametrize("changes, field, error", [
    ({"name": "Bad_Name!"}, "name", "is not a valid app name"),
    ({"name": APP}, "name", "already exists"),
    ({"repo_url": "/nonexistent/repo.git"}, "repo_url", "cannot read git repository"),
    ({"branch": "release"}, "branch", "branch 'release' does not exist"),
    ({"branch": "main; rm -rf /"}, "branch", "is not a usable git branch"),
    ({"port": "70000"}, "port", "less than or equal to 65535"),
    ({"domains": "not a host!"}, "domains", "is not a hostname"),
])
def test_creating_an_app_with_bad_input_shows_the_error_and_creates_nothing(client, world, redis_server,
                                                                            changes, field, error):
    client.force_login(world.users["superuser"])  # the only ones besides the CLI who may use a local repo
    before, files_before = db_state(), haproxy_files()

    response = client.post(reverse("apps"), _new_app(world.app.repo_url, changes))

    form = response.context["form"]
    assert any(error in message for message in form.errors[field])
    assert db_state() == before
    assert haproxy_files() == files_before


# Deployment log ------------------------------------------------------------------------------

@pytest.mark.parametrize("query, seqs", [
    ({}, [1, 2, 3]), ({"after": "0"}, [1, 2, 3]), ({"after": "2"}, [3]), ({"after": "3"}, []),
    ({"after": "-5"}, [1, 2, 3]),
])
def test_deployment_log_returns_the_stored_lines_after_a_sequence_number(client, world, query, seqs):
    client.force_login(world.users["viewer"])

    response = client.get(world.url("deployment_log"), query)

    assert response.status_code == 200
    assert response.json() == {"lines": [{"seq": seq, "text": f"line {seq}"} for seq in seqs]}


@pytest.mark.parametrize("after", ["abc", "1.5", ""])
def test_deployment_log_rejects_an_after_that_is_not_a_whole_number(client, world, after):
    client.force_login(world.users["viewer"])

    response = client.get(world.url("deployment_log"), {"after": after})

    assert response.status_code == 400
    assert response.json() == {"detail": "after must be a whole number"}


def test_deployment_log_pages_long_logs(client, world):
    LogLine.objects.bulk_create(LogLine(deployment=world.release, seq=seq, text=f"line {seq}")
                                for seq in range(4, LOG_PAGE + 11))
    client.force_login(world.users["viewer"])

    first = client.get(world.url("deployment_log")).json()["lines"]
    rest = client.get(world.url("deployment_log"), {"after": first[-1]["seq"]}).json()["lines"]

    assert [line["seq"] for line in first] == list(range(1, LOG_PAGE + 1))
    assert [line["seq"] for line in rest] == list(range(LOG_PAGE + 1, LOG_PAGE + 11))


def test_deployment_log_of_a_missing_deployment_is_404(client, world):
    client.force_login(world.users["superuser"])

    response = client.get(reverse("deployment_log", kwargs={"pk": world.queued.pk + 1000}))

    assert response.status_code == 404


@pytest.mark.parametrize("repo_url", ["{local}", "file://{local}", "http://127.0.0.1:6379/x.git",
                                      "ssh://[::1]/srv/x.git", "git@localhost:x.git", "https://169.254.169.254/x"])
def test_an_ordinary_user_cannot_point_an_app_at_this_machine(client, world, redis_server, repo_url):
    """A local path or loopback URL would let a user read what Switchyard can read (other apps' repos)."""
    client.force_login(world.users["owner"])
    before = db_state()

    response = client.post(reverse("apps"), _new_app(repo_url.format(local=world.app.repo_url)))

    assert any("only the CLI or a superuser" in message for message in response.context["form"].errors["repo_url"])
    assert db_state() == before
    changed = client.post(world.url("app_settings"), settings_data(world.app, repo_url="/srv/other-app.git"))
    assert changed.status_code == 400 and App.objects.get(pk=world.app.pk).repo_url == world.app.repo_url


def test_a_superuser_may_point_an_app_at_a_repository_on_this_machine(client, world, redis_server):
    client.force_login(world.users["superuser"])

    response = client.post(reverse("apps"), _new_app(world.app.repo_url))

    assert response.status_code == 302 and App.objects.get(name="new-app").repo_url == world.app.repo_url


@pytest.mark.parametrize("action", ["certificate_upload", "certificate_acme"])
def test_certificate_actions_are_hidden_from_outsiders_and_refused_below_admin(client, world, action):
    for role, status in (("outsider", 404), ("viewer", 403), ("deployer", 403)):
        client.force_login(world.users[role])
        assert client.post(reverse(action, kwargs={"name": APP}), {"certificate": "x", "key": "y"}).status_code == status
    assert not Certificate.objects.exists()


def test_an_admin_uploads_a_certificate_in_the_panel_and_a_bad_one_is_shown_why(client, world):
    world.app.domains.create(hostname="billing.example.com")
    own = PrivateCA().issue(["billing.example.com"])
    client.force_login(world.users["admin"])
    url = reverse("certificate_upload", kwargs={"name": APP})

    refused = client.post(url, {"certificate": own.chain_pem, "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"})
    assert refused.status_code == 400 and "the key field holds a stray or unfinished" in refused.content.decode()
    assert current_tab(refused) == "settings" and refused.context["certificate_form"]["certificate"].value() == own.chain_pem
    assert not Certificate.objects.exists()

    assert client.post(url, {"certificate": own.chain_pem, "key": own.key_pem}).status_code == 302
    assert Certificate.objects.get(app=world.app).domains == ["billing.example.com"]
    for name in ("app", "app_tab:settings"):
        page = client.get(world.url(name)).content.decode()
        assert 'id="certificate-status">valid' in page and "uploaded" in page


# The app page's tabs -------------------------------------------------------------------------

def current_tab(response) -> str:
    """The tab the tab bar marks as the current page (exactly one)."""
    marked = re.findall(r'<a href="[^"]*" data-tab="([a-z]+)" aria-current="page">', response.content.decode())
    assert len(marked) == 1, marked
    return marked[0]


@pytest.mark.parametrize("slug", TABS)
@pytest.mark.parametrize("role", ROLES)
def test_each_tab_has_its_own_url_and_is_marked_current_in_the_tab_bar(client, world, role, slug):
    client.force_login(world.users[role])
    url = app_pages.tab_url(APP, slug)

    response = client.get(url)

    assert response.status_code == 200
    assert url == (f"/apps/{APP}/" if slug == "overview" else f"/apps/{APP}/{slug}/")
    assert current_tab(response) == slug
    assert response.context["tab"].slug == slug


@pytest.mark.parametrize("role, shown", [("viewer", False), ("deployer", False), ("admin", True), ("owner", True),
                                         ("superuser", True)])
def test_the_environment_and_members_tabs_are_in_the_bar_of_admins_only(client, world, role, shown):
    client.force_login(world.users[role])

    bar = [tab["slug"] for tab in client.get(world.url("app")).context["tabs"]]
    environment = client.get(world.url("app_tab:environment")).content.decode()
    members = client.get(world.url("app_tab:members")).content.decode()

    assert bar == [slug for slug in TABS if shown or slug not in ("environment", "members")]
    assert ("SECRET_TOKEN" in environment) is shown and SECRET not in environment
    assert (">viewer<" in members) is shown
    assert (f"Only {APP}'s admins see and change its environment variables" in environment) is not shown
    assert (f"Only {APP}'s admins see and change its members" in members) is not shown


def test_an_unknown_tab_is_not_found(client, world):
    client.force_login(world.users["owner"])

    assert client.get(f"/apps/{APP}/secrets/").status_code == 404
    assert client.get(f"/apps/{APP}/Settings/").status_code == 404


@pytest.mark.parametrize("name", TAB_PAGES)
def test_tabs_answer_get_only(client, world, name):
    client.force_login(world.users["owner"])
    before = db_state()

    assert client.post(world.url(name)).status_code == 405
    assert db_state() == before


@pytest.mark.parametrize("tab, lands_on", [("logs", "logs"), ("deployments", "deployments"), ("overview", "overview"),
                                           ("nowhere", "overview"), ("//evil.example.com", "overview")])
def test_the_deploy_box_comes_back_to_the_tab_it_was_sent_from(client, world, tab, lands_on):
    client.force_login(world.users["deployer"])

    response = client.post(world.url("deploy"), {"ref": "main; rm -rf /", "tab": tab})

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
def test_an_action_lands_back_on_its_tab_with_its_message_shown_there(client, world, redis_server, action, data, tab,
                                                                        message):
    client.force_login(world.users["owner"])

    response = client.post(world.url(action), settings_data(world.app) if data is None else data, follow=True)

    assert response.redirect_chain == [(app_pages.tab_url(APP, tab), 302)]
    assert current_tab(response) == tab
    assert any(message in m.message for m in response.context["messages"])
    assert message.replace("'", "&#x27;") in response.content.decode()


def test_the_settings_tab_shows_the_form_in_named_groups(client, world):
    client.force_login(world.users["owner"])

    page = client.get(world.url("app_tab:settings")).content.decode()

    headings = re.findall(r'<fieldset class="card settings-group" id="group-([a-z]+)">\s*<legend><h2>([^<]+)</h2>', page)
    assert headings == [("source", "Source"), ("health", "Health and watch"), ("canary", "Canary"),
                        ("limits", "Limits"), ("domains", "Domains and HTTPS")]
    fields = re.findall(r'name="([a-z_]+)"', page.split('id="settings-form"')[1].split("</form>")[0])
    assert sorted(set(fields) - {"csrfmiddlewaretoken"}) == sorted([*SETTINGS_FIELDS, "domains"])


def test_a_deployment_page_leads_back_to_its_apps_deployments_tab(client, world):
    client.force_login(world.users["viewer"])

    page = client.get(world.url("deployment")).content.decode()

    assert f'<a href="/apps/{APP}/deployments/">Deployments</a>' in page

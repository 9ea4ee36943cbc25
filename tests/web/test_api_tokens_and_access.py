"""The REST API's tokens and access rules: without a valid token every endpoint answers 401 JSON
and changes nothing; a token acts as its user with the panel's rules (outsiders 404, lower roles
403); the webhook secret goes to the app's admins only and env var values to nobody."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from deployments.models import ApiToken, App, EnvVar, Membership
from tests.support.apiworld import (ADMIN_ENDPOINTS, ADMINS, APP, APP_ENDPOINTS, DEPLOYER_ENDPOINTS, ENDPOINTS,
                                    NEW_VALUE, READ_ENDPOINTS, ROLES, SECRET, World, db_state, detail, send)
from tests.support.routing import haproxy_files

pytestmark = pytest.mark.usefixtures("dispatched")


# Authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_endpoint_answers_401_json_without_a_token_and_changes_nothing(api_world, name):
    method, template = ENDPOINTS[name]
    before = db_state()

    response = send(Client(), method, api_world.path(template), api_world.body(name))

    assert response.status_code == 401
    assert "Bearer" in detail(response)
    assert db_state() == before


def _revoke(api_world: World) -> str:
    ApiToken.objects.filter(user=api_world.users["owner"]).delete()
    return f"Bearer {api_world.tokens['owner']}"


def _deactivate(api_world: World) -> str:
    get_user_model().objects.filter(pk=api_world.users["owner"].pk).update(is_active=False)
    return f"Bearer {api_world.tokens['owner']}"


BAD_CREDENTIALS = {
    "wrong token": lambda api_world: "Bearer sy_" + "x" * 43,
    "another token's prefix": lambda api_world: f"Bearer {api_world.tokens['owner'][:10]}",
    "revoked (deleted) token": _revoke,
    "token of an inactive user": _deactivate,
    "empty bearer": lambda api_world: "Bearer ",
    "basic auth": lambda api_world: "Basic b3duZXI6cGFzc3dvcmQ=",
    "token without scheme": lambda api_world: api_world.tokens["owner"],
    "non-ascii token": lambda api_world: "Bearer sy_\u00e9\u00e9\u00e9",
}


@pytest.mark.parametrize("name", ["list_apps", "get_app", "update_app", "deploy"])
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_a_wrong_revoked_or_inactive_users_token_gets_401_json_and_changes_nothing(api_world, redis_server, credentials,
                                                                                   name):
    header = BAD_CREDENTIALS[credentials](api_world)
    method, template = ENDPOINTS[name]
    before = db_state()

    response = send(Client(HTTP_AUTHORIZATION=header), method, api_world.path(template), api_world.body(name))

    assert response.status_code == 401
    assert "Bearer" in detail(response)
    assert db_state() == before


def test_the_scheme_name_is_case_insensitive_and_a_used_token_records_when(api_world):
    row = ApiToken.objects.get(user=api_world.users["viewer"])
    assert row.last_used_at is None

    response = Client(HTTP_AUTHORIZATION=f"bearer {api_world.tokens['viewer']}").get("/api/apps")

    assert response.status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_tokens_create_prints_the_token_alone_on_its_last_line_and_it_works(api_world):
    out = io.StringIO()

    call_command("tokens", "create", "outsider", "--name", "ci", stdout=out)

    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith(ApiToken.PREFIX) and token == token.strip() and " " not in token
    row = ApiToken.objects.get(user=api_world.users["outsider"], name="ci")
    assert row.token_hash == ApiToken.hash(token)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/apps").json() == []
    assert client.get(f"/api/apps/{APP}").status_code == 404
    Membership.objects.create(app=api_world.app, user=api_world.users["outsider"], role="viewer")
    assert [app["name"] for app in client.get("/api/apps").json()] == [APP]


def test_tokens_create_for_an_unknown_username_is_a_command_error_and_creates_nothing(api_world):
    before = db_state()

    with pytest.raises(CommandError, match="there is no user 'nobody'"):
        call_command("tokens", "create", "nobody", stdout=io.StringIO())

    assert db_state() == before


# Access --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", APP_ENDPOINTS)
def test_outsider_gets_404_for_another_users_app_and_everything_under_it(api_world, name):
    before, files_before = db_state(), haproxy_files()

    response = api_world.call("outsider", name)

    assert response.status_code == 404
    assert APP not in detail(response)
    assert db_state() == before
    assert haproxy_files() == files_before


@pytest.mark.parametrize("hidden, missing", [
    (("get", f"/api/apps/{APP}"), ("get", "/api/apps/no-such-app")),
    (("patch", f"/api/apps/{APP}"), ("patch", "/api/apps/no-such-app")),
    (("post", f"/api/apps/{APP}/deploy"), ("post", "/api/apps/no-such-app/deploy")),
    (("get", "/api/deployments/{release}"), ("get", "/api/deployments/{missing}")),
    (("post", "/api/deployments/{queued}/cancel"), ("post", "/api/deployments/{missing}/cancel")),
])
def test_outsider_cannot_tell_a_hidden_app_from_a_missing_one(api_world, hidden, missing):
    client = api_world.client("outsider")
    fill = {"release": api_world.release.pk, "queued": api_world.queued.pk, "missing": api_world.queued.pk + 1000}

    hidden_response = send(client, hidden[0], hidden[1].format(**fill), {"port": 9000} if hidden[0] == "patch" else None)
    missing_response = send(client, missing[0], missing[1].format(**fill), {"port": 9000} if missing[0] == "patch" else None)

    assert hidden_response.status_code == missing_response.status_code == 404
    assert APP not in hidden_response.content.decode()
    if hidden[1].startswith("/api/apps"):
        assert hidden_response.content == missing_response.content


@pytest.mark.parametrize("role, sees", [(role, True) for role in ROLES] + [("outsider", False)])
def test_apps_list_shows_only_apps_the_token_user_owns_or_is_member_of(api_world, role, sees):
    App.objects.create(name="side-project", repo_url="/srv/side.git", owner=api_world.users["outsider"])

    response = api_world.call(role, "list_apps")

    assert response.status_code == 200
    names = [app["name"] for app in response.json()]
    assert (APP in names) is sees
    assert ("side-project" in names) is (role in ("outsider", "superuser"))


@pytest.mark.parametrize("name", READ_ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_from_viewer_up_reads_the_app_its_deployments_and_logs(api_world, role, name):
    response = api_world.call(role, name)

    assert response.status_code == 200
    if name == "get_app":
        assert response.json()["name"] == APP
        assert response.json()["role"] == ("admin" if role in ADMINS else role)


@pytest.mark.parametrize("role, name", [("viewer", n) for n in DEPLOYER_ENDPOINTS + ADMIN_ENDPOINTS]
                         + [("deployer", n) for n in ADMIN_ENDPOINTS])
def test_a_role_below_the_one_an_endpoint_needs_gets_403_and_changes_nothing(api_world, redis_server, dispatched, handed_over,
                                                                             role, name):
    before, files_before = db_state(), haproxy_files()

    response = api_world.call(role, name)

    assert response.status_code == 403
    needed = "admin" if name in ADMIN_ENDPOINTS else "deployer"
    assert f"needs the {needed} role" in detail(response)
    assert db_state() == before
    assert haproxy_files() == files_before
    assert dispatched == [] and handed_over == []


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin", "owner", "superuser", "outsider-made-member"])
def test_webhook_secret_is_returned_only_to_the_apps_admins(api_world, role):
    if role == "outsider-made-member":
        Membership.objects.create(app=api_world.app, user=api_world.users["outsider"], role="admin")
        role = "outsider"
    is_admin = role in ADMINS or role == "outsider"

    one = api_world.call(role, "get_app").json()
    listed = next(app for app in api_world.call(role, "list_apps").json() if app["name"] == APP)

    for body in (one, listed):
        assert body["webhook_url"] == f"http://testserver/hooks/{APP}/"
        assert body["webhook_secret"] == (api_world.app.webhook_secret if is_admin else None)
    if not is_admin:
        assert api_world.app.webhook_secret not in api_world.call(role, "get_app").content.decode()


# Env var values ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_env_var_values_never_appear_in_any_response(api_world, redis_server, monkeypatch, role):
    """Every endpoint, as every role, in the order that keeps the app alive until the end."""
    client = api_world.client(role)
    bodies = []
    for name in ["list_apps", "get_app", "list_deployments", "get_deployment", "logs", "deploy", "redeploy", "cancel"]:
        bodies.append(api_world.call(role, name))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"NEW_VAR": NEW_VALUE}}))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"SECRET_TOKEN": "x" * 300}}))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"BAD-KEY": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "other-app", "repo_url": api_world.remote_url,
                                                      "env": {"OTHER": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "Bad!", "repo_url": api_world.repo_url,
                                                      "env": {"OTHER": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "x", "repo_url": api_world.repo_url,
                                                      "env": {"OTHER": [NEW_VALUE]}}))
    bodies.append(Client().get("/api/openapi.json"))
    bodies.append(api_world.call(role, "delete_app"))

    for response in bodies:
        assert response.status_code < 500
        text = response.content.decode()
        assert SECRET not in text and NEW_VALUE not in text
    assert client.get("/api/apps/other-app").json()["env_keys"] == ["OTHER"]  # any user may create apps
    assert EnvVar.objects.get(app__name="other-app", key="OTHER").value == NEW_VALUE

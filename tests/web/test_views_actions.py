"""The panel's actions in detail: POST only, with a CSRF token; refused input explained and nothing
changed; env vars stored encrypted and never shown; settings errors re-rendered; an app deleted
only when its name is typed."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.models import App, Deployment, Domain, EnvVar
from tests.support.panelworld import (ACTIONS, ADMINS, APP, DEPLOYERS, NEW_VALUE, SECRET, current_tab, db_state,
                                      home_tab, messages_of, settings_data)
from tests.support.routing import ROUTING, haproxy_files, routed

pytestmark = pytest.mark.usefixtures("dispatched")


# Actions in detail ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTIONS)
def test_actions_refuse_get_and_change_nothing(client, panel_world, name):
    client.force_login(panel_world.users["owner"])
    before = db_state()

    response = client.get(panel_world.url(name))

    assert response.status_code == 405
    assert db_state() == before


@pytest.mark.parametrize("name", ["apps", *ACTIONS])
def test_posts_without_a_csrf_token_are_refused_and_change_nothing(panel_world, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(panel_world.users["owner"])
    before = db_state()

    response = client.post(panel_world.url(name), panel_world.data(name))

    assert response.status_code == 403
    assert db_state() == before


def test_zero_downtime_switch_turns_off_and_on(client, panel_world):
    client.force_login(panel_world.users["admin"])

    client.post(panel_world.url("zero_downtime"))
    off = App.objects.get(pk=panel_world.app.pk).zero_downtime
    client.post(panel_world.url("zero_downtime"), {"enabled": "on"})

    assert off is False
    assert App.objects.get(pk=panel_world.app.pk).zero_downtime is True


def test_deploy_rejects_a_ref_with_shell_characters_and_queues_nothing(client, panel_world):
    client.force_login(panel_world.users["deployer"])
    before = db_state()

    response = client.post(panel_world.url("deploy"), {"ref": "main; rm -rf /"})

    assert response.status_code == 302 and response.url == panel_world.url("app")
    assert any("is not a usable git branch" in m for m in messages_of(response))
    assert db_state() == before


def test_deploy_with_an_overlong_ref_explains_and_queues_nothing(client, panel_world, dispatched):
    client.force_login(panel_world.users["deployer"])
    before = db_state()

    response = client.post(panel_world.url("deploy"), {"ref": "a" * 201})

    assert response.status_code == 302 and response.url == panel_world.url("app")
    assert any("ref is too long" in m for m in messages_of(response))
    assert db_state() == before and dispatched == []


@pytest.mark.parametrize("path", ["/apps/billing-api/members/99999999999999999999/delete",
                                  "/deployments/99999999999999999999/cancel"])
def test_ids_beyond_the_database_range_are_not_found(client, panel_world, path):
    client.force_login(panel_world.users["owner"])
    before = db_state()

    assert client.post(path).status_code == 404
    assert db_state() == before


def test_cancelling_a_finished_deployment_explains_and_changes_nothing(client, panel_world):
    client.force_login(panel_world.users["deployer"])
    before = db_state()

    response = client.post(reverse("cancel", kwargs={"pk": panel_world.release.pk}))

    assert response.status_code == 302 and response.url == panel_world.url("deployment")
    assert any("already ended" in m for m in messages_of(response))
    assert db_state() == before


@pytest.mark.parametrize("role", DEPLOYERS)
def test_redeploying_a_release_whose_image_was_pruned_explains_and_queues_nothing(client, panel_world, redis_server,
                                                                                  settings, role):
    for n in range(settings.SWITCHYARD["KEEP_IMAGES"]):  # newer successes: the release's image was pruned
        Deployment.objects.create(app=panel_world.app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha=f"{n}" * 40,
                                  image=f"switchyard/{APP}:{n}", finished_at=timezone.now())
    client.force_login(panel_world.users[role])
    before = db_state()

    response = client.post(panel_world.url("redeploy"))

    assert response.status_code == 302 and response.url == home_tab("redeploy")
    assert any("is no longer kept" in m for m in messages_of(response))
    assert db_state() == before


def test_redeploying_a_deployment_that_did_not_succeed_explains_and_queues_nothing(client, panel_world, redis_server):
    client.force_login(panel_world.users["owner"])
    before = db_state()

    response = client.post(reverse("redeploy", kwargs={"pk": panel_world.queued.pk}))

    assert response.status_code == 302 and response.url == home_tab("redeploy")
    assert any("did not succeed" in m for m in messages_of(response))
    assert db_state() == before


# Env vars ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ADMINS)
def test_env_var_values_are_stored_encrypted_and_never_shown_on_the_app_page(client, panel_world, role):
    client.force_login(panel_world.users[role])

    response = client.post(panel_world.url("env_set"), {"key": "NEW_VAR", "value": NEW_VALUE}, follow=True)

    assert response.status_code == 200
    stored = dict(EnvVar.objects.filter(app=panel_world.app).values_list("key", "encrypted_value"))
    assert set(stored) == {"SECRET_TOKEN", "NEW_VAR"}
    assert NEW_VALUE not in stored["NEW_VAR"] and SECRET not in stored["SECRET_TOKEN"]
    assert EnvVar.objects.get(app=panel_world.app, key="NEW_VAR").value == NEW_VALUE
    page = response.content.decode()
    assert "NEW_VAR" in page and "SECRET_TOKEN" in page
    assert NEW_VALUE not in page and SECRET not in page


def test_setting_an_existing_env_var_replaces_its_value(client, panel_world):
    client.force_login(panel_world.users["admin"])

    client.post(panel_world.url("env_set"), {"key": "SECRET_TOKEN", "value": "rotated"})

    assert [var.value for var in EnvVar.objects.filter(app=panel_world.app, key="SECRET_TOKEN")] == ["rotated"]


@pytest.mark.parametrize("data", [{"key": "1BAD", "value": "x"}, {"key": "A-B", "value": "x"}, {"key": "", "value": "x"}])
def test_env_set_with_a_bad_name_explains_and_changes_nothing(client, panel_world, data):
    client.force_login(panel_world.users["admin"])
    before = db_state()

    response = client.post(panel_world.url("env_set"), data)

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
def test_settings_errors_rerender_with_400_and_change_nothing(client, panel_world, redis_server, changes, error):
    other = App.objects.create(name="shop", repo_url="/srv/shop.git")
    Domain.objects.create(app=other, hostname="shop.example.com")
    client.force_login(panel_world.users["admin"])
    before, files_before = db_state(), haproxy_files()

    response = client.post(panel_world.url("app_settings"), settings_data(panel_world.app, **changes))

    assert response.status_code == 400
    assert error in response.content.decode()
    assert response.context["settings_form"].errors
    assert current_tab(response) == "settings"
    for field, typed in changes.items():  # what was typed is still there to correct
        assert response.context["settings_form"][field].value() == typed
    assert SECRET not in response.content.decode()
    assert db_state() == before
    assert haproxy_files() == files_before


def test_saved_domains_are_handed_to_the_worker_to_route(client, panel_world, redis_server, handed_over):
    client.force_login(panel_world.users["owner"])

    response = client.post(panel_world.url("app_settings"), settings_data(panel_world.app, domains="Pay.Example.com api.example.com"))

    assert response.status_code == 302
    assert sorted(Domain.objects.filter(app=panel_world.app).values_list("hostname", flat=True)) == [
        "api.example.com", "pay.example.com"]
    assert routed("pay.example.com app_billing-api_blue") and routed("api.example.com app_billing-api_blue")
    assert ROUTING in handed_over


# Delete --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [{}, {"confirm": ""}, {"confirm": "wrong"}, {"confirm": APP.upper()},
                                  {"confirm": f"{APP} "}])
def test_app_delete_needs_the_app_name_typed_to_confirm(client, panel_world, data):
    client.force_login(panel_world.users["owner"])
    before = db_state()

    response = client.post(panel_world.url("app_delete"), data)

    assert response.status_code == 302 and response.url == home_tab("app_delete")
    assert any(f"Type {APP} to confirm" in m for m in messages_of(response))
    assert db_state() == before


def test_a_deleted_app_is_gone_from_its_pages_and_the_list(client, panel_world, redis_server, handed_over):
    client.force_login(panel_world.users["owner"])

    client.post(panel_world.url("app_delete"), {"confirm": APP})

    assert client.get(panel_world.url("app")).status_code == 404
    assert client.get(panel_world.url("deployment")).status_code == 404
    assert APP not in [row["app"].name for row in client.get(reverse("apps")).context["rows"]]
    assert not routed(f"{APP}.localhost") and ROUTING in handed_over

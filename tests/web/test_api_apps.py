"""The REST API's apps: create (the token's user its owner), read, change only what a request names,
delete everywhere; an app's certificate uploaded and given back to ACME; deploy-event targets and the
commit-status token."""

import pytest

from deployments.dockerd.values import image_namespace
from deployments.models import App, AuditEvent, Certificate, Deployment, Domain
from tests.support.apiworld import ADMINS, APP, NEW_VALUE, SECRET, db_state, detail, send
from tests.support.routing import ROUTING, routed
from tests.support.tls import PrivateCA

pytestmark = pytest.mark.usefixtures("dispatched")


# Apps ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["outsider", "viewer", "superuser"])
def test_creating_an_app_answers_201_and_makes_the_token_user_its_owner(api_world, redis_server, dispatched, handed_over,
                                                                       role):
    creator = api_world.users[role]

    response = api_world.client(role).post("/api/apps", {
        "name": "new-app", "repo_url": api_world.remote_url, "branch": "main", "dockerfile": "Dockerfile", "port": 8080,
        "health_path": "/ready", "domains": ["New.Example.com"], "env": {"API_KEY": NEW_VALUE}, "replicas": 2,
        "zero_downtime": False,
    }, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    app = App.objects.get(name="new-app")
    assert app.owner == creator
    assert body == {
        "name": "new-app", "repo_url": api_world.remote_url, "branch": "main", "dockerfile": "Dockerfile",
        "compose_file": "", "web_service": "web", "compose_profiles": "", "port": 8080, "health_path": "/ready", "health_status": 200, "health_timeout": 2.0, "health_deadline": 60.0,
        "health_host": "", "replicas": 2, "stop_timeout": 10, "watch_window": 0, "watch_error_percent": 5.0,
        "watch_min_requests": 20, "canary_steps": [], "canary_step_seconds": 60, "canary_error_margin": 1.0,
        "canary_latency_margin": 50.0, "canary_min_requests": 20, "release_command": "", "memory_limit_mb": 512, "cpu_limit": 1.0, "pids_limit": 256, "capabilities": "",
        "build_timeout": 1800, "https_redirect": True, "hsts": False, "zero_downtime": False, "auto_deploy": True,
        "domains": ["new.example.com"], "env_keys": ["API_KEY"], "live_deployment": None, "role": "admin",
        "webhook_url": "http://testserver/hooks/new-app/", "webhook_secret": app.webhook_secret,
        "deploy_key": app.deploy_public_key, "registry": {"host": "", "username": "", "password_set": False},
    }
    assert app.env_vars.get().value == NEW_VALUE
    assert routed("new.example.com app_new-app_blue") and ROUTING in handed_over
    assert dispatched == []
    assert "new-app" in [a["name"] for a in api_world.call(role, "list_apps").json()]
    if role != "superuser":
        assert api_world.client("deployer").get("/api/apps/new-app").status_code == 404


def test_creating_an_app_with_only_name_and_repo_uses_the_defaults(api_world, redis_server):
    response = api_world.client("outsider").post("/api/apps", {"name": "minimal", "repo_url": api_world.remote_url},
                                             content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert (body["branch"], body["dockerfile"], body["port"], body["health_path"], body["replicas"],
            body["zero_downtime"], body["domains"], body["env_keys"]) == ("main", "Dockerfile", 8000, "/health", 1,
                                                                          True, [], [])


def test_creating_a_compose_app_stores_its_file_web_service_and_port(api_world, redis_server):
    response = api_world.client("outsider").post("/api/apps", {
        "name": "counter", "repo_url": api_world.remote_url, "compose_file": "deploy/compose.yaml",
        "web_service": "front", "port": 3000, "compose_profiles": "prod debug"}, content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["compose_file"], body["web_service"], body["port"], body["compose_profiles"]) == (
        "deploy/compose.yaml", "front", 3000, "prod debug")
    app = App.objects.get(name="counter")
    assert (app.compose_file, app.web_service, app.port, app.compose_profiles) == (
        "deploy/compose.yaml", "front", 3000, "prod debug")


def test_get_app_returns_its_settings_domains_env_keys_and_live_deployment(api_world):
    Domain.objects.create(app=api_world.app, hostname="billing.example.com")
    App.objects.filter(pk=api_world.app.pk).update(live_deployment=api_world.release, health_host="billing.example.com")

    response = api_world.call("deployer", "get_app")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == APP and body["repo_url"] == api_world.repo_url
    assert body["domains"] == ["billing.example.com"]
    assert body["env_keys"] == ["SECRET_TOKEN"]
    assert body["live_deployment"] == api_world.release.pk
    assert body["health_host"] == "billing.example.com"
    assert body["role"] == "deployer"
    assert body["webhook_secret"] is None


@pytest.mark.parametrize("role", ADMINS)
def test_patch_changes_settings_domains_switches_and_env_vars(api_world, redis_server, dispatched, handed_over, role):
    response = api_world.client(role).patch(f"/api/apps/{APP}", {
        "port": 9000, "dockerfile": "deploy/Dockerfile", "health_path": "/ready", "health_status": 204,
        "health_timeout": 5.5, "health_deadline": 120, "health_host": "billing.example.com", "replicas": 3,
        "stop_timeout": 30, "domains": ["Billing.Example.com", "pay.example.com"], "zero_downtime": False,
        "auto_deploy": False, "env": {"NEW_VAR": NEW_VALUE, "SECRET_TOKEN": None},
    }, content_type="application/json")

    assert response.status_code == 200
    app = App.objects.get(pk=api_world.app.pk)
    assert (app.port, app.dockerfile, app.health_path, app.health_status, app.health_timeout, app.health_deadline,
            app.health_host, app.replicas, app.stop_timeout, app.zero_downtime, app.auto_deploy) == (
        9000, "deploy/Dockerfile", "/ready", 204, 5.5, 120.0, "billing.example.com", 3, 30, False, False)
    assert sorted(app.domains.values_list("hostname", flat=True)) == ["billing.example.com", "pay.example.com"]
    assert app.environment() == {"NEW_VAR": NEW_VALUE}
    body = response.json()
    assert (body["port"], body["replicas"], body["zero_downtime"], body["auto_deploy"]) == (9000, 3, False, False)
    assert sorted(body["domains"]) == ["billing.example.com", "pay.example.com"]
    assert body["env_keys"] == ["NEW_VAR"]
    assert routed("pay.example.com app_billing-api_blue") and ROUTING in handed_over
    assert dispatched == []


@pytest.mark.parametrize("changes, check", [
    ({"port": 9000}, lambda app: app.port == 9000),
    ({"branch": "main", "repo_url": "{repo}"}, lambda app: app.branch == "main"),
    ({"replicas": 8}, lambda app: app.replicas == 8),
    ({"domains": ["shop.example.org"]}, lambda app: list(app.domains.values_list("hostname", flat=True)) == ["shop.example.org"]),
    ({"domains": []}, lambda app: not app.domains.exists()),
    ({"zero_downtime": False}, lambda app: app.zero_downtime is False),
    ({"auto_deploy": False}, lambda app: app.auto_deploy is False),
    ({"env": {"SECRET_TOKEN": "rotated"}}, lambda app: app.environment() == {"SECRET_TOKEN": "rotated"}),
    ({"env": {"SECRET_TOKEN": None}}, lambda app: app.environment() == {}),
    ({"env": {"NEVER_SET": None}}, lambda app: app.environment() == {"SECRET_TOKEN": SECRET}),
    ({}, lambda app: app.port == 8000 and app.environment() == {"SECRET_TOKEN": SECRET}),
    ({"canary_steps": [5, 25, 50, 100], "canary_step_seconds": 30},
     lambda app: (app.canary_steps, app.canary_step_seconds) == ([5, 25, 50, 100], 30)),
    ({"canary_steps": []}, lambda app: app.canary_steps == []),
    ({"release_command": "manage.py migrate"}, lambda app: app.release_command == "manage.py migrate"),
])
def test_patch_changes_only_what_it_names(api_world, redis_server, changes, check):
    Domain.objects.create(app=api_world.app, hostname="old.example.com")
    changes = {k: (v.format(repo=api_world.repo_url) if isinstance(v, str) else v) for k, v in changes.items()}
    untouched = {k: v for k, v in App.objects.filter(pk=api_world.app.pk).values().get().items()
                 if k not in changes and k not in ("repo_url",)}

    response = api_world.client("owner").patch(f"/api/apps/{APP}", changes, content_type="application/json")

    assert response.status_code == 200
    app = App.objects.get(pk=api_world.app.pk)
    assert check(app)
    assert {k: v for k, v in App.objects.filter(pk=app.pk).values().get().items() if k in untouched} == untouched
    if "domains" not in changes:
        assert list(app.domains.values_list("hostname", flat=True)) == ["old.example.com"]


@pytest.mark.parametrize("role", ADMINS)
def test_delete_answers_204_and_the_app_is_gone_everywhere(api_world, redis_server, handed_over, role):
    client = api_world.client(role)

    response = api_world.call(role, "delete_app")

    assert response.status_code == 204 and response.content == b""
    assert not App.objects.filter(name=APP).exists()
    assert not Deployment.objects.filter(app_id=api_world.app.pk).exists()
    assert client.get(f"/api/apps/{APP}").status_code == 404
    assert client.get(f"/api/deployments/{api_world.release.pk}").status_code == 404
    assert APP not in [a["name"] for a in client.get("/api/apps").json()]
    assert not routed(f"{APP}.localhost") and ROUTING in handed_over
    removal = [args for name, args in handed_over if name == "deployments.tasks.remove_app_resources"]
    assert removal == [(APP, sorted([api_world.release.pk, api_world.queued.pk]), 10, f"{image_namespace()}/{APP}", api_world.app.pk)]
    assert client.delete(f"/api/apps/{APP}").status_code == 404


# HTTPS ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ADMINS)
def test_an_admin_uploads_a_certificate_for_the_apps_domain_and_goes_back_to_acme(api_world, role):
    api_world.app.domains.create(hostname="billing.example.com")
    ca = PrivateCA("billing's CA")
    own, other = ca.issue(["billing.example.com"]), ca.issue(["elsewhere.example.com"])
    client = api_world.client(role)
    url = f"/api/apps/{APP}/certificate"

    assert send(client, "get", url).json()["source"] is None
    refused = [send(client, "post", url, {"certificate": "not a certificate", "key": own.key_pem}),
               send(client, "post", url, {"certificate": own.chain_pem, "key": other.key_pem}),
               send(client, "post", url, {"certificate": other.chain_pem, "key": other.key_pem})]
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert "the certificate field holds text outside PEM blocks" in detail(refused[0])
    assert "the key does not belong to the certificate" in detail(refused[1])
    assert "does not cover billing.example.com" in detail(refused[2])
    assert not Certificate.objects.exists()

    uploaded = send(client, "post", url, {"certificate": own.chain_pem, "key": own.key_pem})
    assert uploaded.status_code == 200
    assert (uploaded.json()["source"], uploaded.json()["status"], uploaded.json()["domains"]) == (
        "uploaded", "valid", ["billing.example.com"])
    assert "billing's CA" in uploaded.json()["issuer"]
    assert AuditEvent.objects.filter(action="certificate.upload", app=api_world.app).exists()

    back = send(client, "delete", url)
    assert (back.status_code, back.json()["source"], back.json()["status"]) == (200, "acme", "pending")
    assert send(client, "delete", url).status_code == 409


def test_the_panels_own_domain_cannot_be_an_apps(api_world, redis_server, settings):
    settings.SWITCHYARD = {**settings.SWITCHYARD, "PANEL_DOMAIN": "panel.example.com"}
    before = db_state()

    response = send(api_world.client("owner"), "patch", f"/api/apps/{APP}", {"domains": ["Panel.Example.com"]})

    assert response.status_code == 400
    assert "is the panel's own domain" in detail(response)
    assert db_state() == before


# Deploy events ----------------------------------------------------------------------------------

def test_notification_targets_are_added_listed_and_deleted_and_bad_ones_refused(api_world):
    client = api_world.client("owner")
    base = f"/api/apps/{APP}/notifications"

    created = send(client, "post", base, {"kind": "slack", "url": "https://hooks.slack.com/services/T/B/x",
                                          "events": ["failed", "rolled_back"]})
    refused = [send(client, "post", base, body) for body in (
        {"kind": "pager", "url": "https://x.example.com/"}, {"kind": "webhook", "url": "file:///etc/passwd"},
        {"kind": "email", "emails": "not an address"}, {"kind": "webhook", "url": "https://x.example.com/",
                                                       "events": ["deployed"]})]

    assert created.status_code == 201, created.content
    target = created.json()
    assert (target["kind"], target["events"], target["secret"]) == ("slack", ["failed", "rolled_back"], None)
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    assert "is not an http(s) URL" in detail(refused[1]) and "choose among" in detail(refused[3])
    assert [t["id"] for t in client.get(base).json()] == [target["id"]]
    assert send(client, "delete", f"{base}/{target['id']}").status_code == 204
    assert send(client, "delete", f"{base}/{target['id']}").status_code == 404
    assert client.get(base).json() == []


def test_the_commit_status_token_is_stored_encrypted_and_never_shown(api_world):
    response = send(api_world.client("owner"), "put", f"/api/apps/{APP}/commit-status-token", {"token": "ghp_s3cret"})

    assert response.status_code == 204
    app = App.objects.get(pk=api_world.app.pk)
    assert app.commit_status_token == "ghp_s3cret" and "ghp_s3cret" not in app.encrypted_commit_status_token
    assert "ghp_s3cret" not in api_world.client("owner").get(f"/api/apps/{APP}").content.decode()


def test_registry_credentials_are_stored_encrypted_and_never_shown(api_world):
    client = api_world.client("owner")
    url = f"/api/apps/{APP}/registry-credentials"
    response = send(client, "put", url, {"host": "Registry.Example.com:5000", "username": "bot", "password": "r3g-s3cret"})

    assert response.status_code == 204
    app = App.objects.get(pk=api_world.app.pk)
    assert (app.registry_host, app.registry_username, app.registry_password) == (
        "registry.example.com:5000", "bot", "r3g-s3cret")
    assert "r3g-s3cret" not in app.encrypted_registry_password
    shown = client.get(f"/api/apps/{APP}")
    assert "r3g-s3cret" not in shown.content.decode()
    assert shown.json()["registry"] == {"host": "registry.example.com:5000", "username": "bot", "password_set": True}
    assert api_world.client("viewer").get(f"/api/apps/{APP}").json()["registry"]["username"] is None
    refused = [send(client, "put", url, body) for body in (
        {"host": "https://registry.example.com/v2", "username": "bot", "password": "x"},
        {"host": "other.example.com", "username": "bot"},  # the stored password is not for another host
        {"host": "registry.example.com:5000", "username": "bot", "password": "two words"})]
    assert [r.status_code for r in refused] == [400, 400, 400]
    assert "a registry host" in detail(refused[0]) and "a password or token for this registry" in detail(refused[1])
    assert App.objects.get(pk=app.pk).registry_password == "r3g-s3cret"
    assert send(client, "put", url, {"host": ""}).status_code == 204
    app.refresh_from_db()
    assert (app.registry_host, app.registry_username, app.encrypted_registry_password) == ("", "", "")
    assert client.get(f"/api/apps/{APP}").json()["registry"] == {"host": "", "username": "", "password_set": False}

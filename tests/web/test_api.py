"""The REST API at /api/: bearer tokens act as their user with the panel's access rules
(outsiders 404, lower roles 403), every endpoint does what it says, every error is JSON
{"detail": ...} with the right status (never a 500), env var values and the webhook secret
do not leak, and a push reaches production through the API alone."""
import io
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from deployments import enqueue
from deployments.application import domains
from deployments.api import LOG_PAGE
from deployments.dockerd.values import image_namespace
from deployments.git import source
from deployments.haproxy.config import render_map
from deployments.models import (ApiToken, App, AuditEvent, Certificate, Deployment, Domain, EnvVar, EventDelivery, LogLine,
                                Membership, NotificationTarget)
from deployments.traffic import rows, target
from tests.support.eventually import eventually
from tests.support.tls import PrivateCA

APP = "billing-api"
SECRET = "s3cr3t-token-value-7731"
NEW_VALUE = "plain-new-value-4242"
RELEASE_IMAGE = f"switchyard/{APP}:aaaaaaaaaaaa"

ROLES = ["viewer", "deployer", "admin", "owner", "superuser"]
ADMINS = ["admin", "owner", "superuser"]
DEPLOYERS = ["deployer", *ADMINS]

# Every endpoint: name -> (method, path). {app}, {release} and {queued} are filled in by World.
ENDPOINTS = {
    "list_apps": ("get", "/api/apps"),
    "create_app": ("post", "/api/apps"),
    "get_app": ("get", "/api/apps/{app}"),
    "update_app": ("patch", "/api/apps/{app}"),
    "delete_app": ("delete", "/api/apps/{app}"),
    "list_deployments": ("get", "/api/apps/{app}/deployments"),
    "deploy": ("post", "/api/apps/{app}/deploy"),
    "get_deployment": ("get", "/api/deployments/{release}"),
    "logs": ("get", "/api/deployments/{release}/logs"),
    "cancel": ("post", "/api/deployments/{queued}/cancel"),
    "redeploy": ("post", "/api/deployments/{release}/redeploy"),
    "get_certificate": ("get", "/api/apps/{app}/certificate"),
    "upload_certificate": ("post", "/api/apps/{app}/certificate"),
    "use_acme_certificate": ("delete", "/api/apps/{app}/certificate"),
    "abort": ("post", "/api/deployments/{release}/abort"),
    "list_notification_targets": ("get", "/api/apps/{app}/notifications"),
    "add_notification_target": ("post", "/api/apps/{app}/notifications"),
    "set_commit_status_token": ("put", "/api/apps/{app}/commit-status-token"),
    "list_event_deliveries": ("get", "/api/apps/{app}/events"),
}
APP_ENDPOINTS = [name for name in ENDPOINTS if name not in ("list_apps", "create_app")]
READ_ENDPOINTS = ["get_app", "list_deployments", "get_deployment", "logs", "get_certificate"]
DEPLOYER_ENDPOINTS = ["deploy", "cancel", "redeploy", "abort"]
ADMIN_ENDPOINTS = ["update_app", "delete_app", "upload_certificate", "use_acme_certificate",
                   "list_notification_targets", "add_notification_target", "set_commit_status_token",
                   "list_event_deliveries"]


@dataclass
class World:
    users: dict
    tokens: dict
    app: App
    release: Deployment  # succeeded, with an image; has log lines
    queued: Deployment
    repo_url: str  # the app's repository, on this machine
    # What an ordinary user may create an app from: a remote (answered as git would, see `world`).
    remote_url: str = "https://git.example.com/team/new-app.git"
    clients: dict = field(default_factory=dict)

    def path(self, template: str) -> str:
        return template.format(app=APP, release=self.release.pk, queued=self.queued.pk)

    def client(self, role: str) -> Client:
        if role not in self.clients:
            self.clients[role] = Client(HTTP_AUTHORIZATION=f"Bearer {self.tokens[role]}")
        return self.clients[role]

    def body(self, name: str) -> dict | None:
        """A JSON body that makes the endpoint do something."""
        return {
            "create_app": {"name": "new-app", "repo_url": self.remote_url, "domains": ["new.example.com"]},
            "update_app": {"port": 9000, "domains": ["billing.example.com"]},
            "deploy": {"ref": "main"},
            "upload_certificate": {"certificate": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN PRIVATE KEY-----"},
            "add_notification_target": {"kind": "webhook", "url": "https://hooks.example.com/deploys"},
            "set_commit_status_token": {"token": "ghp_from-a-test"},
        }.get(name)

    def call(self, role: str, name: str, **extra):
        method, template = ENDPOINTS[name]
        return send(self.client(role), method, self.path(template), self.body(name), **extra)


def send(client: Client, method: str, path: str, body=None, **extra):
    """A request with `body` as JSON (a dict or list), raw text (a str) or nothing (None)."""
    if body is None:  # truly empty (the test client's post() would send an empty multipart form)
        return client.generic(method.upper(), path, **extra)
    return getattr(client, method)(path, body, content_type="application/json", **extra)


def db_state() -> dict:
    """Everything a request could change."""
    return {
        "apps": list(App.objects.order_by("pk").values()),
        "deployments": list(Deployment.objects.order_by("pk").values()),
        "env": list(EnvVar.objects.order_by("pk").values()),
        "members": list(Membership.objects.order_by("pk").values()),
        "domains": list(Domain.objects.order_by("pk").values()),
        "notification_targets": list(NotificationTarget.objects.order_by("pk").values()),
        "event_deliveries": list(EventDelivery.objects.order_by("pk").values()),
        "users": list(get_user_model().objects.order_by("pk").values_list("pk", "username", "is_active")),
        "tokens": list(ApiToken.objects.order_by("pk").values_list("pk", "user_id", "token_hash")),
    }


ROUTING = ("deployments.tasks.apply_routing", ())


def routed(entry: str) -> bool:
    """Whether the map the worker writes from the database has `entry` ("host backend")."""
    return entry in render_map(rows.app_routes())


def haproxy_files() -> tuple[str | None, str | None]:
    location = target.paths()
    return tuple(p.read_text() if p.exists() else None for p in (location.config, location.hosts_map))


def detail(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert list(body) == ["detail"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


@pytest.fixture(autouse=True)
def dispatched(request, monkeypatch) -> list[int] | None:
    """Ids of deployments handed to the queue, recorded instead of sent: a Celery worker left
    running by an earlier test of the session would build and start them. Tests that use the
    real stack are left alone: their worker must get the task."""
    if "stack" in request.fixturenames:
        return None
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


@pytest.fixture
def world(committed_per_request, redis_server, django_user_model, released_repo, monkeypatch, handed_over) -> World:
    # No git host is reachable here: World.remote_url answers as a remote with a main branch
    # would; every other URL goes to git (which may use local files only in tests).
    read_remote = source.remote_branches
    monkeypatch.setattr(source, "remote_branches",
                        lambda url, access=None: ["main"] if url == World.remote_url else read_remote(url, access))
    # ...and its compose files (read when a Compose app is created) name each service the app routes to.
    read_file = source.read_remote_file
    monkeypatch.setattr(source, "read_remote_file", lambda url, branch, path, max_bytes, access: (
        "services: {web: {build: .}, front: {build: .}}" if url == World.remote_url
        else read_file(url, branch, path, max_bytes, access)))
    users = {name: django_user_model.objects.create_user(name) for name in ("owner", "viewer", "deployer", "admin", "outsider")}
    users["superuser"] = django_user_model.objects.create_superuser("root")
    tokens = {role: ApiToken.issue(user, "t")[1] for role, user in users.items()}
    app = App.objects.create(name=APP, repo_url=released_repo.url, owner=users["owner"])
    # The rolled-back database of an earlier test gave its app this id too: its upload's pause
    # (kept in the suite's Redis, not rolled back) is not this app's.
    cache.delete(domains.certificate_upload_key(app))
    for role in ("viewer", "deployer", "admin"):
        Membership.objects.create(app=app, user=users[role], role=role)
    EnvVar(app=app, key="SECRET_TOKEN", value=SECRET).save()
    release = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="a" * 40,
                                        image=RELEASE_IMAGE)
    LogLine.objects.bulk_create(LogLine(deployment=release, seq=seq, text=f"line {seq}") for seq in (3, 1, 2))
    queued = Deployment.objects.create(app=app, ref="main", state=Deployment.State.QUEUED)
    return World(users=users, tokens=tokens, app=app, release=release, queued=queued, repo_url=released_repo.url)


# Authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_endpoint_answers_401_json_without_a_token_and_changes_nothing(world, name):
    method, template = ENDPOINTS[name]
    before = db_state()

    response = send(Client(), method, world.path(template), world.body(name))

    assert response.status_code == 401
    assert "Bearer" in detail(response)
    assert db_state() == before


def _revoke(world: World) -> str:
    ApiToken.objects.filter(user=world.users["owner"]).delete()
    return f"Bearer {world.tokens['owner']}"


def _deactivate(world: World) -> str:
    get_user_model().objects.filter(pk=world.users["owner"].pk).update(is_active=False)
    return f"Bearer {world.tokens['owner']}"


BAD_CREDENTIALS = {
    "wrong token": lambda world: "Bearer sy_" + "x" * 43,
    "another token's prefix": lambda world: f"Bearer {world.tokens['owner'][:10]}",
    "revoked (deleted) token": _revoke,
    "token of an inactive user": _deactivate,
    "empty bearer": lambda world: "Bearer ",
    "basic auth": lambda world: "Basic b3duZXI6cGFzc3dvcmQ=",
    "token without scheme": lambda world: world.tokens["owner"],
    "non-ascii token": lambda world: "Bearer sy_\u00e9\u00e9\u00e9",
}


@pytest.mark.parametrize("name", ["list_apps", "get_app", "update_app", "deploy"])
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_a_wrong_revoked_or_inactive_users_token_gets_401_json_and_changes_nothing(world, redis_server, credentials,
                                                                                   name):
    header = BAD_CREDENTIALS[credentials](world)
    method, template = ENDPOINTS[name]
    before = db_state()

    response = send(Client(HTTP_AUTHORIZATION=header), method, world.path(template), world.body(name))

    assert response.status_code == 401
    assert "Bearer" in detail(response)
    assert db_state() == before


def test_the_scheme_name_is_case_insensitive_and_a_used_token_records_when(world):
    row = ApiToken.objects.get(user=world.users["viewer"])
    assert row.last_used_at is None

    response = Client(HTTP_AUTHORIZATION=f"bearer {world.tokens['viewer']}").get("/api/apps")

    assert response.status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_tokens_create_prints_the_token_alone_on_its_last_line_and_it_works(world):
    out = io.StringIO()

    call_command("tokens", "create", "outsider", "--name", "ci", stdout=out)

    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith(ApiToken.PREFIX) and token == token.strip() and " " not in token
    row = ApiToken.objects.get(user=world.users["outsider"], name="ci")
    assert row.token_hash == ApiToken.hash(token)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/apps").json() == []
    assert client.get(f"/api/apps/{APP}").status_code == 404
    Membership.objects.create(app=world.app, user=world.users["outsider"], role="viewer")
    assert [app["name"] for app in client.get("/api/apps").json()] == [APP]


def test_tokens_create_for_an_unknown_username_is_a_command_error_and_creates_nothing(world):
    before = db_state()

    with pytest.raises(CommandError, match="there is no user 'nobody'"):
        call_command("tokens", "create", "nobody", stdout=io.StringIO())

    assert db_state() == before


# Access --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", APP_ENDPOINTS)
def test_outsider_gets_404_for_another_users_app_and_everything_under_it(world, name):
    before, files_before = db_state(), haproxy_files()

    response = world.call("outsider", name)

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
def test_outsider_cannot_tell_a_hidden_app_from_a_missing_one(world, hidden, missing):
    client = world.client("outsider")
    fill = {"release": world.release.pk, "queued": world.queued.pk, "missing": world.queued.pk + 1000}

    hidden_response = send(client, hidden[0], hidden[1].format(**fill), {"port": 9000} if hidden[0] == "patch" else None)
    missing_response = send(client, missing[0], missing[1].format(**fill), {"port": 9000} if missing[0] == "patch" else None)

    assert hidden_response.status_code == missing_response.status_code == 404
    assert APP not in hidden_response.content.decode()
    if hidden[1].startswith("/api/apps"):
        assert hidden_response.content == missing_response.content


@pytest.mark.parametrize("role, sees", [(role, True) for role in ROLES] + [("outsider", False)])
def test_apps_list_shows_only_apps_the_token_user_owns_or_is_member_of(world, role, sees):
    App.objects.create(name="side-project", repo_url="/srv/side.git", owner=world.users["outsider"])

    response = world.call(role, "list_apps")

    assert response.status_code == 200
    names = [app["name"] for app in response.json()]
    assert (APP in names) is sees
    assert ("side-project" in names) is (role in ("outsider", "superuser"))


@pytest.mark.parametrize("name", READ_ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_every_role_from_viewer_up_reads_the_app_its_deployments_and_logs(world, role, name):
    response = world.call(role, name)

    assert response.status_code == 200
    if name == "get_app":
        assert response.json()["name"] == APP
        assert response.json()["role"] == ("admin" if role in ADMINS else role)


@pytest.mark.parametrize("role, name", [("viewer", n) for n in DEPLOYER_ENDPOINTS + ADMIN_ENDPOINTS]
                         + [("deployer", n) for n in ADMIN_ENDPOINTS])
def test_a_role_below_the_one_an_endpoint_needs_gets_403_and_changes_nothing(world, redis_server, dispatched, handed_over,
                                                                             role, name):
    before, files_before = db_state(), haproxy_files()

    response = world.call(role, name)

    assert response.status_code == 403
    needed = "admin" if name in ADMIN_ENDPOINTS else "deployer"
    assert f"needs the {needed} role" in detail(response)
    assert db_state() == before
    assert haproxy_files() == files_before
    assert dispatched == [] and handed_over == []


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin", "owner", "superuser", "outsider-made-member"])
def test_webhook_secret_is_returned_only_to_the_apps_admins(world, role):
    if role == "outsider-made-member":
        Membership.objects.create(app=world.app, user=world.users["outsider"], role="admin")
        role = "outsider"
    is_admin = role in ADMINS or role == "outsider"

    one = world.call(role, "get_app").json()
    listed = next(app for app in world.call(role, "list_apps").json() if app["name"] == APP)

    for body in (one, listed):
        assert body["webhook_url"] == f"http://testserver/hooks/{APP}/"
        assert body["webhook_secret"] == (world.app.webhook_secret if is_admin else None)
    if not is_admin:
        assert world.app.webhook_secret not in world.call(role, "get_app").content.decode()


# Env var values ------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_env_var_values_never_appear_in_any_response(world, redis_server, monkeypatch, role):
    """Every endpoint, as every role, in the order that keeps the app alive until the end."""
    client = world.client(role)
    bodies = []
    for name in ["list_apps", "get_app", "list_deployments", "get_deployment", "logs", "deploy", "redeploy", "cancel"]:
        bodies.append(world.call(role, name))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"NEW_VAR": NEW_VALUE}}))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"SECRET_TOKEN": "x" * 300}}))
    bodies.append(send(client, "patch", f"/api/apps/{APP}", {"env": {"BAD-KEY": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "other-app", "repo_url": world.remote_url,
                                                      "env": {"OTHER": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "Bad!", "repo_url": world.repo_url,
                                                      "env": {"OTHER": NEW_VALUE}}))
    bodies.append(send(client, "post", "/api/apps", {"name": "x", "repo_url": world.repo_url,
                                                      "env": {"OTHER": [NEW_VALUE]}}))
    bodies.append(Client().get("/api/openapi.json"))
    bodies.append(world.call(role, "delete_app"))

    for response in bodies:
        assert response.status_code < 500
        text = response.content.decode()
        assert SECRET not in text and NEW_VALUE not in text
    assert client.get("/api/apps/other-app").json()["env_keys"] == ["OTHER"]  # any user may create apps
    assert EnvVar.objects.get(app__name="other-app", key="OTHER").value == NEW_VALUE


# Apps ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["outsider", "viewer", "superuser"])
def test_creating_an_app_answers_201_and_makes_the_token_user_its_owner(world, redis_server, dispatched, handed_over,
                                                                       role):
    creator = world.users[role]

    response = world.client(role).post("/api/apps", {
        "name": "new-app", "repo_url": world.remote_url, "branch": "main", "dockerfile": "Dockerfile", "port": 8080,
        "health_path": "/ready", "domains": ["New.Example.com"], "env": {"API_KEY": NEW_VALUE}, "replicas": 2,
        "zero_downtime": False,
    }, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    app = App.objects.get(name="new-app")
    assert app.owner == creator
    assert body == {
        "name": "new-app", "repo_url": world.remote_url, "branch": "main", "dockerfile": "Dockerfile",
        "compose_file": "", "web_service": "web", "port": 8080, "health_path": "/ready", "health_status": 200, "health_timeout": 2.0, "health_deadline": 60.0,
        "health_host": "", "replicas": 2, "stop_timeout": 10, "watch_window": 0, "watch_error_percent": 5.0,
        "watch_min_requests": 20, "canary_steps": [], "canary_step_seconds": 60, "canary_error_margin": 1.0,
        "canary_latency_margin": 50.0, "canary_min_requests": 20, "release_command": "", "memory_limit_mb": 512, "cpu_limit": 1.0, "pids_limit": 256, "capabilities": "",
        "build_timeout": 1800, "https_redirect": True, "hsts": False, "zero_downtime": False, "auto_deploy": True,
        "domains": ["new.example.com"], "env_keys": ["API_KEY"], "live_deployment": None, "role": "admin",
        "webhook_url": "http://testserver/hooks/new-app/", "webhook_secret": app.webhook_secret,
        "deploy_key": app.deploy_public_key,
    }
    assert app.env_vars.get().value == NEW_VALUE
    assert routed("new.example.com app_new-app_blue") and ROUTING in handed_over
    assert dispatched == []
    assert "new-app" in [a["name"] for a in world.call(role, "list_apps").json()]
    if role != "superuser":
        assert world.client("deployer").get("/api/apps/new-app").status_code == 404


def test_creating_an_app_with_only_name_and_repo_uses_the_defaults(world, redis_server):
    response = world.client("outsider").post("/api/apps", {"name": "minimal", "repo_url": world.remote_url},
                                             content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert (body["branch"], body["dockerfile"], body["port"], body["health_path"], body["replicas"],
            body["zero_downtime"], body["domains"], body["env_keys"]) == ("main", "Dockerfile", 8000, "/health", 1,
                                                                          True, [], [])


def test_creating_a_compose_app_stores_its_file_web_service_and_port(world, redis_server):
    response = world.client("outsider").post("/api/apps", {
        "name": "counter", "repo_url": world.remote_url, "compose_file": "deploy/compose.yaml",
        "web_service": "front", "port": 3000}, content_type="application/json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["compose_file"], body["web_service"], body["port"]) == ("deploy/compose.yaml", "front", 3000)
    app = App.objects.get(name="counter")
    assert (app.compose_file, app.web_service, app.port) == ("deploy/compose.yaml", "front", 3000)


def test_get_app_returns_its_settings_domains_env_keys_and_live_deployment(world):
    Domain.objects.create(app=world.app, hostname="billing.example.com")
    App.objects.filter(pk=world.app.pk).update(live_deployment=world.release, health_host="billing.example.com")

    response = world.call("deployer", "get_app")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == APP and body["repo_url"] == world.repo_url
    assert body["domains"] == ["billing.example.com"]
    assert body["env_keys"] == ["SECRET_TOKEN"]
    assert body["live_deployment"] == world.release.pk
    assert body["health_host"] == "billing.example.com"
    assert body["role"] == "deployer"
    assert body["webhook_secret"] is None


@pytest.mark.parametrize("role", ADMINS)
def test_patch_changes_settings_domains_switches_and_env_vars(world, redis_server, dispatched, handed_over, role):
    response = world.client(role).patch(f"/api/apps/{APP}", {
        "port": 9000, "dockerfile": "deploy/Dockerfile", "health_path": "/ready", "health_status": 204,
        "health_timeout": 5.5, "health_deadline": 120, "health_host": "billing.example.com", "replicas": 3,
        "stop_timeout": 30, "domains": ["Billing.Example.com", "pay.example.com"], "zero_downtime": False,
        "auto_deploy": False, "env": {"NEW_VAR": NEW_VALUE, "SECRET_TOKEN": None},
    }, content_type="application/json")

    assert response.status_code == 200
    app = App.objects.get(pk=world.app.pk)
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
def test_patch_changes_only_what_it_names(world, redis_server, changes, check):
    Domain.objects.create(app=world.app, hostname="old.example.com")
    changes = {k: (v.format(repo=world.repo_url) if isinstance(v, str) else v) for k, v in changes.items()}
    untouched = {k: v for k, v in App.objects.filter(pk=world.app.pk).values().get().items()
                 if k not in changes and k not in ("repo_url",)}

    response = world.client("owner").patch(f"/api/apps/{APP}", changes, content_type="application/json")

    assert response.status_code == 200
    app = App.objects.get(pk=world.app.pk)
    assert check(app)
    assert {k: v for k, v in App.objects.filter(pk=app.pk).values().get().items() if k in untouched} == untouched
    if "domains" not in changes:
        assert list(app.domains.values_list("hostname", flat=True)) == ["old.example.com"]


@pytest.mark.parametrize("role", ADMINS)
def test_delete_answers_204_and_the_app_is_gone_everywhere(world, redis_server, handed_over, role):
    client = world.client(role)

    response = world.call(role, "delete_app")

    assert response.status_code == 204 and response.content == b""
    assert not App.objects.filter(name=APP).exists()
    assert not Deployment.objects.filter(app_id=world.app.pk).exists()
    assert client.get(f"/api/apps/{APP}").status_code == 404
    assert client.get(f"/api/deployments/{world.release.pk}").status_code == 404
    assert APP not in [a["name"] for a in client.get("/api/apps").json()]
    assert not routed(f"{APP}.localhost") and ROUTING in handed_over
    removal = [args for name, args in handed_over if name == "deployments.tasks.remove_app_resources"]
    assert removal == [(APP, sorted([world.release.pk, world.queued.pk]), 10, f"{image_namespace()}/{APP}", world.app.pk)]
    assert client.delete(f"/api/apps/{APP}").status_code == 404


# Deployments ---------------------------------------------------------------------------------

def test_deployments_are_listed_newest_first_and_limit_caps_the_list(world, redis_server):
    newest = send(world.client("deployer"), "post", f"/api/apps/{APP}/deploy").json()["id"]

    listed = world.call("viewer", "list_deployments").json()
    limited = world.client("viewer").get(f"/api/apps/{APP}/deployments", {"limit": 2}).json()

    assert [d["id"] for d in listed] == [newest, world.queued.pk, world.release.pk]
    assert [d["state"] for d in listed] == ["queued", "superseded", "succeeded"]
    assert [d["id"] for d in limited] == [newest, world.queued.pk]
    assert all(d["app"] == APP for d in listed)


@pytest.mark.parametrize("body, ref", [(None, "main"), ({}, "main"), ({"ref": None}, "main"), ({"ref": ""}, "main"),
                                       ({"ref": "v1.2"}, "v1.2"), ({"ref": "feature/x"}, "feature/x"),
                                       ({"ref": "a" * 40}, "a" * 40)])
@pytest.mark.parametrize("role", DEPLOYERS)
def test_deploy_answers_202_with_the_queued_deployment_of_the_branch_or_the_given_ref(world, redis_server, dispatched,
                                                                                      role, body, ref):
    response = send(world.client(role), "post", f"/api/apps/{APP}/deploy", body)

    assert response.status_code == 202
    new = Deployment.objects.exclude(pk__in=[world.release.pk, world.queued.pk]).get()
    assert (new.ref, new.trigger, new.triggered_by, new.state) == (ref, "api", world.users[role].username, "queued")
    assert dispatched == [new.pk]
    got = response.json()
    assert (got["id"], got["app"], got["state"], got["ref"], got["trigger"], got["triggered_by"], got["redeploy_of"]) == (
        new.pk, APP, "queued", ref, "api", world.users[role].username, None)
    assert [p["name"] for p in got["phases"]] == [p for p in Deployment.PHASES if p != "canary"]
    world.queued.refresh_from_db()
    assert world.queued.state == Deployment.State.SUPERSEDED


def test_get_deployment_returns_state_phase_ref_commit_image_phases_and_error(world):
    failed = Deployment.objects.create(
        app=world.app, ref="v2", state=Deployment.State.FAILED, phase="verify", commit_sha="b" * 40,
        image=f"switchyard/{APP}:bbbbbbbbbbbb", error="health check failed: /health answered 500",
        phase_times={p: {"start": "2024-01-01T00:00:00+00:00", "end": "2024-01-01T00:00:02+00:00"}
                     for p in ("fetch", "build", "start")} | {"verify": {"start": "2024-01-01T00:00:02+00:00"}})

    response = world.client("viewer").get(f"/api/deployments/{failed.pk}")

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "app", "state", "phase", "ref", "commit", "image", "error", "trigger")} == {
        "id": failed.pk, "app": APP, "state": "failed", "phase": "verify", "ref": "v2", "commit": "b" * 40,
        "image": f"switchyard/{APP}:bbbbbbbbbbbb", "error": "health check failed: /health answered 500", "trigger": "cli"}
    assert body["phases"] == [
        {"name": "fetch", "status": "done", "seconds": 2.0}, {"name": "build", "status": "done", "seconds": 2.0},
        {"name": "start", "status": "done", "seconds": 2.0}, {"name": "verify", "status": "failed", "seconds": None},
        {"name": "switch", "status": "skipped", "seconds": None}, {"name": "watch", "status": "skipped", "seconds": None},
        {"name": "drain", "status": "skipped", "seconds": None}]
    assert body["created_at"] and body["started_at"] is None and body["finished_at"] is None


@pytest.mark.parametrize("query, seqs", [
    ({}, [1, 2, 3]), ({"after": "0"}, [1, 2, 3]), ({"after": "2"}, [3]), ({"after": "3"}, []), ({"after": "99"}, []),
])
def test_logs_return_the_lines_after_a_sequence_number_in_order(world, query, seqs):
    response = world.client("viewer").get(f"/api/deployments/{world.release.pk}/logs", query)

    assert response.status_code == 200
    assert response.json() == [{"seq": seq, "text": f"line {seq}"} for seq in seqs]


def test_logs_are_paged_1000_lines_at_a_time(world):
    assert LOG_PAGE == 1000
    LogLine.objects.bulk_create(LogLine(deployment=world.release, seq=seq, text=f"line {seq}")
                                for seq in range(4, 2 * LOG_PAGE + 11))
    client = world.client("viewer")
    url = f"/api/deployments/{world.release.pk}/logs"

    first = client.get(url).json()
    second = client.get(url, {"after": first[-1]["seq"]}).json()
    third = client.get(url, {"after": second[-1]["seq"]}).json()

    assert [line["seq"] for line in first] == list(range(1, LOG_PAGE + 1))
    assert [line["seq"] for line in second] == list(range(LOG_PAGE + 1, 2 * LOG_PAGE + 1))
    assert [line["seq"] for line in third] == list(range(2 * LOG_PAGE + 1, 2 * LOG_PAGE + 11))
    assert client.get(url, {"after": third[-1]["seq"]}).json() == []


@pytest.mark.parametrize("role", DEPLOYERS)
def test_cancelling_a_queued_deployment_ends_it_at_once(world, dispatched, role):
    response = world.call(role, "cancel")

    assert response.status_code == 200
    world.queued.refresh_from_db()
    assert (world.queued.state, world.queued.cancelled_by) == ("cancelled", world.users[role].username)
    assert world.queued.finished_at is not None
    assert (response.json()["id"], response.json()["state"]) == (world.queued.pk, "cancelled")
    assert f"cancelled by {world.users[role].username}" in response.json()["error"]
    assert dispatched == []


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled", "superseded", "rolled_back"])
def test_cancelling_a_finished_deployment_is_409_and_changes_nothing(world, state):
    Deployment.objects.filter(pk=world.queued.pk).update(state=state)
    before = db_state()

    response = world.call("deployer", "cancel")

    assert response.status_code == 409
    assert f"already ended ({state})" in detail(response)
    assert db_state() == before


def test_cancelling_after_the_switch_is_409_too_late(world):
    Deployment.objects.filter(pk=world.queued.pk).update(state="running", phase="drain")
    before = db_state()

    response = world.call("deployer", "cancel")

    assert response.status_code == 409
    assert "Too late to cancel" in detail(response)
    assert db_state() == before


@pytest.mark.parametrize("role", DEPLOYERS)
def test_redeploy_of_a_kept_image_answers_202_with_a_deployment_that_reuses_it(world, redis_server, dispatched,
                                                                               monkeypatch, role):

    response = world.call(role, "redeploy")

    assert response.status_code == 202
    new = Deployment.objects.exclude(pk__in=[world.release.pk, world.queued.pk]).get()
    assert (new.redeploy_of_id, new.image, new.commit_sha, new.trigger, new.triggered_by) == (
        world.release.pk, RELEASE_IMAGE, "a" * 40, "api", world.users[role].username)
    assert dispatched == [new.pk]
    body = response.json()
    assert (body["id"], body["redeploy_of"], body["image"], body["commit"], body["state"]) == (
        new.pk, world.release.pk, RELEASE_IMAGE, "a" * 40, "queued")
    assert [p["status"] for p in body["phases"][:2]] == ["skipped", "skipped"]


def test_redeploy_of_an_image_no_longer_kept_is_409_with_an_explanation(world, redis_server, dispatched, settings):
    for n in range(settings.SWITCHYARD["KEEP_IMAGES"]):  # newer successes: the release's image was pruned
        Deployment.objects.create(app=world.app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha=f"{n}" * 40,
                                  image=f"switchyard/{APP}:{n}", finished_at=timezone.now())
    before = db_state()

    response = world.call("deployer", "redeploy")

    assert response.status_code == 409
    assert f"The image {RELEASE_IMAGE} is no longer kept" in detail(response)
    assert db_state() == before and dispatched == []


def test_redeploy_of_a_deployment_that_did_not_succeed_is_409(world, redis_server, dispatched, monkeypatch):
    before = db_state()

    response = send(world.client("owner"), "post", f"/api/deployments/{world.queued.pk}/redeploy")

    assert response.status_code == 409
    assert "did not succeed" in detail(response)
    assert db_state() == before and dispatched == []


# Bad input -----------------------------------------------------------------------------------

NEW = {"name": "new-app", "repo_url": "{repo}"}
BAD_INPUT = {
    # malformed bodies
    "create: malformed JSON": ("post", "/api/apps", '{"name": "x", ', 400, "Cannot parse request body"),
    "patch: malformed JSON": ("patch", "/api/apps/{app}", '{"port": ', 400, "Cannot parse request body"),
    "deploy: form data instead of JSON": ("post", "/api/apps/{app}/deploy", "ref=main", 400, "Cannot parse request body"),
    "patch: body not UTF-8": ("patch", "/api/apps/{app}", b'{"port": "\xff\xfe"}', None, None),
    "create: a JSON list": ("post", "/api/apps", [NEW], 422, "body"),
    "create: a JSON string": ("post", "/api/apps", '"new-app"', 422, None),
    "create: missing name": ("post", "/api/apps", {"repo_url": "{repo}"}, 422, "name"),
    "create: empty object": ("post", "/api/apps", {}, 422, "repo_url"),
    # wrong types
    "create: port abc": ("post", "/api/apps", {**NEW, "port": "abc"}, 422, "port"),
    "create: port 8000.5": ("post", "/api/apps", {**NEW, "port": 8000.5}, 422, "port"),
    "create: replicas 99": ("post", "/api/apps", {**NEW, "replicas": 99}, 422, "replicas"),
    "create: replicas 0": ("post", "/api/apps", {**NEW, "replicas": 0}, 422, "replicas"),
    "create: domains a string": ("post", "/api/apps", {**NEW, "domains": "a.example.com"}, 422, "domains"),
    "create: env a list": ("post", "/api/apps", {**NEW, "env": ["A=1"]}, 422, "env"),
    "create: env value a number": ("post", "/api/apps", {**NEW, "env": {"A": 1}}, 422, "env"),
    "create: zero_downtime a word": ("post", "/api/apps", {**NEW, "zero_downtime": "perhaps"}, 422, "zero_downtime"),
    "create: name a number": ("post", "/api/apps", {**NEW, "name": 42}, 422, "name"),
    "patch: port abc": ("patch", "/api/apps/{app}", {"port": "abc"}, 422, "port"),
    "patch: replicas 99": ("patch", "/api/apps/{app}", {"replicas": 99}, 400, "less than or equal to 8"),
    "patch: domains a string": ("patch", "/api/apps/{app}", {"domains": "a.example.com"}, 422, "domains"),
    "patch: env a list": ("patch", "/api/apps/{app}", {"env": ["A"]}, 422, "env"),
    "patch: auto_deploy a word": ("patch", "/api/apps/{app}", {"auto_deploy": "perhaps"}, 422, "auto_deploy"),
    "patch: canary_steps a string": ("patch", "/api/apps/{app}", {"canary_steps": "5,100"}, 422, "canary_steps"),
    "patch: canary_steps falling": ("patch", "/api/apps/{app}", {"canary_steps": [50, 5, 100]}, 400, "must rise"),
    "patch: canary_steps without 100": ("patch", "/api/apps/{app}", {"canary_steps": [5, 50]}, 400,
                                        "the last canary step must be 100"),
    "patch: canary_steps 101": ("patch", "/api/apps/{app}", {"canary_steps": [5, 101]}, 400, "each between 1 and 100"),
    "patch: canary_step_seconds 0": ("patch", "/api/apps/{app}", {"canary_step_seconds": 0}, 400,
                                     "greater than or equal to 1"),
    "deploy: ref a number": ("post", "/api/apps/{app}/deploy", {"ref": 5}, 422, "ref"),
    # out of range and invalid values
    "create: huge port": ("post", "/api/apps", {**NEW, "port": 10 ** 20}, 400, "port"),
    "create: port 70000": ("post", "/api/apps", {**NEW, "port": 70000}, 400, "less than or equal to 65535"),
    "patch: huge port": ("patch", "/api/apps/{app}", {"port": 10 ** 20}, 400, "port"),
    "patch: port 0": ("patch", "/api/apps/{app}", {"port": 0}, 400, "greater than or equal to 1"),
    "patch: port null": ("patch", "/api/apps/{app}", {"port": None}, 400, "port"),
    "patch: negative stop_timeout": ("patch", "/api/apps/{app}", {"stop_timeout": -1}, 400, "stop_timeout"),
    "patch: health_timeout Infinity": ("patch", "/api/apps/{app}", '{"health_timeout": Infinity}', 422, "health_timeout"),
    "patch: health_path without /": ("patch", "/api/apps/{app}", {"health_path": "health"}, 400, "is not a health check path"),
    "patch: health_host with a newline": ("patch", "/api/apps/{app}", {"health_host": "x.com\n    server evil 127.0.0.2:80"},
                                          400, "is not a Host header"),
    "patch: bad domain": ("patch", "/api/apps/{app}", {"port": 9000, "domains": ["not a host!"]}, 400, "is not a hostname"),
    "patch: localhost domain": ("patch", "/api/apps/{app}", {"domains": ["x.billing-api.localhost"]}, 400, "names are reserved"),
    "patch: another app's domain": ("patch", "/api/apps/{app}", {"domains": ["shop.example.com"]}, 400,
                                    "is already a domain of another app"),
    "patch: missing branch": ("patch", "/api/apps/{app}", {"port": 9000, "branch": "release"}, 400,
                              "branch 'release' does not exist"),
    "patch: bad repo URL": ("patch", "/api/apps/{app}", {"repo_url": "--upload-pack=touch /tmp/pwned"}, 400,
                            "is not a git repository URL"),
    "patch: bad env key": ("patch", "/api/apps/{app}", {"env": {"1BAD": "x"}}, 400, "is not an environment variable name"),
    "create: invalid app name": ("post", "/api/apps", {**NEW, "name": "Bad_Name!"}, 400, "is not a valid app name"),
    "create: over-long name": ("post", "/api/apps", {**NEW, "name": "a" * 33}, 400, "name"),
    "create: very long name": ("post", "/api/apps", {**NEW, "name": "a" * 100_000}, 400, "name"),
    "create: existing name": ("post", "/api/apps", {**NEW, "name": APP}, 400, "already exists"),
    "create: bad repo URL": ("post", "/api/apps", {**NEW, "repo_url": "--upload-pack=touch /tmp/pwned"}, 400,
                             "is not a git repository URL"),
    "create: unreadable repo": ("post", "/api/apps", {**NEW, "repo_url": "https://git.example.com/none.git"}, 400,
                                "cannot read git repository"),
    "create: a path on this machine": ("post", "/api/apps", {**NEW, "repo_url": "/srv/other.git"}, 400,
                                       "only the CLI or a superuser"),
    "patch: a path on this machine": ("patch", "/api/apps/{app}", {"repo_url": "file:///srv/other.git"}, 400,
                                      "only the CLI or a superuser"),
    "create: limits out of range": ("post", "/api/apps", {**NEW, "memory_limit_mb": 1, "pids_limit": 10**6}, 400,
                                    "memory_limit_mb"),
    "patch: CPU limit NaN": ("patch", "/api/apps/{app}", '{"cpu_limit": NaN}', 422, "cpu_limit"),
    "patch: unknown capability": ("patch", "/api/apps/{app}", {"capabilities": "SYS_ADMIN"}, 400,
                                  "not a capability an app may have"),
    "create: branch with shell characters": ("post", "/api/apps", {**NEW, "branch": "main; rm -rf /"}, 400,
                                             "is not a usable git branch"),
    "create: missing branch": ("post", "/api/apps", {**NEW, "branch": "release"}, 400, "branch 'release' does not exist"),
    "create: bad domain": ("post", "/api/apps", {**NEW, "domains": ["not a host!"]}, 400, "is not a hostname"),
    "create: bad env key": ("post", "/api/apps", {**NEW, "env": {"A-B": "x"}}, 400, "is not an environment variable name"),
    "deploy: ref with shell characters": ("post", "/api/apps/{app}/deploy", {"ref": "main; rm -rf /"}, 400,
                                          "is not a usable git branch"),
    "deploy: ref with command substitution": ("post", "/api/apps/{app}/deploy", {"ref": "$(reboot)"}, 400,
                                              "is not a usable git branch"),
    "deploy: ref like an option": ("post", "/api/apps/{app}/deploy", {"ref": "--upload-pack=x"}, 400,
                                   "is not a usable git branch"),
    "deploy: over-long ref": ("post", "/api/apps/{app}/deploy", {"ref": "a" * 201}, 400, "is not a usable git branch"),
    # path and query
    "deployment: huge id": ("get", "/api/deployments/99999999999999999999", None, 422, "deployment_id"),
    "logs: huge id": ("get", "/api/deployments/99999999999999999999/logs", None, 422, "deployment_id"),
    "cancel: huge id": ("post", "/api/deployments/99999999999999999999/cancel", None, 422, "deployment_id"),
    "redeploy: huge id": ("post", "/api/deployments/99999999999999999999/redeploy", None, 422, "deployment_id"),
    "deployment: id 0": ("get", "/api/deployments/0", None, 422, "deployment_id"),
    "deployment: negative id": ("get", "/api/deployments/-1", None, 422, "deployment_id"),
    "deployment: id abc": ("get", "/api/deployments/abc", None, 422, "deployment_id"),
    "deployment: missing id": ("get", "/api/deployments/123456", None, 404, "No such deployment"),
    "logs: negative after": ("get", "/api/deployments/{release}/logs?after=-5", None, 422, "after"),
    "logs: after abc": ("get", "/api/deployments/{release}/logs?after=abc", None, 422, "after"),
    "logs: after 1.5": ("get", "/api/deployments/{release}/logs?after=1.5", None, 422, "after"),
    "logs: empty after": ("get", "/api/deployments/{release}/logs?after=", None, 422, "after"),
    "logs: huge after": ("get", "/api/deployments/{release}/logs?after=99999999999999999999", None, 422, "after"),
    "deployments: limit 0": ("get", "/api/apps/{app}/deployments?limit=0", None, 422, "limit"),
    "deployments: limit abc": ("get", "/api/apps/{app}/deployments?limit=abc", None, 422, "limit"),
    "app: invalid name": ("get", "/api/apps/Bad_Name!", None, 404, "No such app"),
    "app: over-long name": ("get", "/api/apps/" + "a" * 5000, None, 404, "No such app"),
    "patch: invalid app name": ("patch", "/api/apps/Bad_Name!", {"port": 9000}, 404, "No such app"),
    "deploy: invalid app name": ("post", "/api/apps/Bad_Name!/deploy", None, 404, "No such app"),
    "delete: missing app": ("delete", "/api/apps/no-such-app", None, 404, "No such app"),
    # found by this suite and fixed: each once answered 500, changed things, or was taken as empty
    "patch: health_timeout NaN": ("patch", "/api/apps/{app}", '{"health_timeout": NaN}', 422, "health_timeout"),
    "patch: health_deadline NaN": ("patch", "/api/apps/{app}", '{"health_deadline": NaN}', 422, "health_deadline"),
    "create: the same domain twice": ("post", "/api/apps", {**NEW, "repo_url": "https://git.example.com/x.git",
                                      "domains": ["a.example.com", "A.example.com"]}, 400, "cannot read git repository"),
    "create: NUL in repo URL": ("post", "/api/apps", {**NEW, "repo_url": "/tmp/x\u0000y"}, 400,
                                "is not a git repository URL"),
    "patch: NUL in repo URL": ("patch", "/api/apps/{app}", {"repo_url": "/tmp/x\u0000y"}, 400,
                               "is not a git repository URL"),
    "patch: Dockerfile outside the repo": ("patch", "/api/apps/{app}", {"dockerfile": "../../etc/passwd"}, 400,
                                           "is not a Dockerfile path"),
    "patch: compose file outside the repo": ("patch", "/api/apps/{app}", {"compose_file": "../compose.yaml"}, 400,
                                             "is not a compose file path"),
    "create: bad web service name": ("post", "/api/apps", {**NEW, "compose_file": "compose.yaml",
                                                           "web_service": "Web Server"}, 400, "is not a service name"),
    "patch: good port, bad env key": ("patch", "/api/apps/{app}", {"port": 9000, "env": {"1BAD": "x"}}, 400,
                                      "is not an environment variable name"),
    "patch: switch, bad env key": ("patch", "/api/apps/{app}", {"zero_downtime": False, "env": {"1BAD": "x"}}, 400,
                                   "is not an environment variable name"),
    "patch: good and bad env keys": ("patch", "/api/apps/{app}", {"env": {"GOOD": "x", "1BAD": "y"}}, 400,
                                     "is not an environment variable name"),
    "patch: a number as body": ("patch", "/api/apps/{app}", "5", 422, "JSON object"),
    "patch: a list as body": ("patch", "/api/apps/{app}", [], 422, "JSON object"),
    "patch: true as body": ("patch", "/api/apps/{app}", "true", 422, "JSON object"),
    "deploy: a number as body": ("post", "/api/apps/{app}/deploy", "5", 422, "JSON object"),
    "deploy: a string as body": ("post", "/api/apps/{app}/deploy", '"main"', 422, "JSON object"),
    "deploy: a list as body": ("post", "/api/apps/{app}/deploy", [], 422, "JSON object"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_a_json_error_with_the_right_status_never_a_500_and_changes_nothing(world, redis_server,
                                                                                           dispatched, case):
    method, path, body, status, fragment = BAD_INPUT[case]
    other = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=world.users["outsider"])
    Domain.objects.create(app=other, hostname="shop.example.com")
    if isinstance(body, dict):
        body = {k: (v.replace("{repo}", world.remote_url) if isinstance(v, str) else v) for k, v in body.items()}
    before, files_before = db_state(), haproxy_files()

    response = send(world.client("owner"), method, world.path(path), body)

    assert response.status_code < 500
    message = detail(response)
    if status is not None:
        assert response.status_code == status, message
    else:
        assert 400 <= response.status_code < 500
    if fragment is not None:
        assert fragment in message
    assert db_state() == before
    assert haproxy_files() == files_before
    assert dispatched == []


def test_the_same_domain_twice_in_one_request_is_kept_once(world, redis_server):
    response = send(world.client("owner"), "patch", world.path("/api/apps/{app}"),
                    {"domains": ["a.example.com", "A.example.com", "a.example.com"]})

    assert response.status_code == 200, detail(response)
    assert response.json()["domains"] == ["a.example.com"]


@pytest.mark.parametrize("body", [
    {"owner": 1, "webhook_secret": "chosen-by-attacker", "live_deployment": 1, "live_colour": "green", "name": "renamed"},
    {"port": 9000, "webhook_secret": "chosen-by-attacker", "id": 999, "created_at": "2000-01-01T00:00:00Z"},
])
def test_unknown_fields_in_a_patch_are_ignored_and_cannot_change_protected_columns(world, redis_server, body):
    protected = App.objects.filter(pk=world.app.pk).values(
        "id", "name", "owner_id", "webhook_secret", "live_deployment_id", "live_colour", "created_at").get()

    response = world.client("admin").patch(f"/api/apps/{APP}", body, content_type="application/json")

    assert response.status_code == 200
    assert App.objects.filter(pk=world.app.pk).values(*protected).get() == protected
    assert response.json()["webhook_secret"] == protected["webhook_secret"]


def test_unknown_fields_in_a_create_are_ignored_and_cannot_choose_the_owner_or_secret(world, redis_server):
    response = world.client("viewer").post("/api/apps", {
        "name": "new-app", "repo_url": world.remote_url, "owner": world.users["superuser"].pk,
        "webhook_secret": "chosen-by-attacker", "auto_deploy": False, "live_colour": "green"},
        content_type="application/json")

    assert response.status_code == 201
    app = App.objects.get(name="new-app")
    assert app.owner == world.users["viewer"]
    assert app.webhook_secret != "chosen-by-attacker" and app.live_colour == "blue"


# OpenAPI -------------------------------------------------------------------------------------

def test_openapi_schema_is_served_and_lists_every_endpoint():
    response = Client().get("/api/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    expected = {(method, template.replace("{app}", "{name}").replace("{release}", "{deployment_id}")
                 .replace("{queued}", "{deployment_id}")) for method, template in ENDPOINTS.values()}
    assert expected <= operations
    assert len(expected) == len(ENDPOINTS)
    assert any(scheme.get("scheme") == "bearer" for scheme in schema["components"]["securitySchemes"].values())
    app_out = schema["components"]["schemas"]["AppOut"]["properties"]
    assert "webhook_secret" in app_out and "env_keys" in app_out and "env" not in app_out


# End to end ----------------------------------------------------------------------------------

def _wait_final(client: Client, deployment_id: int, timeout: float = 180) -> dict:
    seen = {}

    def final() -> dict | None:
        seen.update(client.get(f"/api/deployments/{deployment_id}").json())
        return dict(seen) if seen["state"] in Deployment.FINAL_STATES else None
    return eventually(final, lambda: f"deployment #{deployment_id} ending (still {seen['state']}/{seen['phase']})",
                      timeout, interval=0.2)


def test_a_pushed_commit_goes_live_through_the_api_alone(stack, app_repo, django_user_model):
    user = django_user_model.objects.create_superuser("ci")  # the repo is on this machine: superusers only
    out = io.StringIO()
    call_command("tokens", "create", "ci", stdout=out)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().splitlines()[-1]}")
    v1_sha = app_repo.commit_version("v1")

    created = api.post("/api/apps", {"name": "pushed", "repo_url": app_repo.url, "env": {"GREETING": NEW_VALUE}},
                       content_type="application/json")
    assert created.status_code == 201, created.content
    assert App.objects.get(name="pushed").owner == user
    first = send(api, "post", "/api/apps/pushed/deploy")
    assert first.status_code == 202, first.content
    first = _wait_final(api, first.json()["id"])

    assert first["state"] == "succeeded", first["error"]
    assert first["commit"] == v1_sha and first["ref"] == "main" and first["trigger"] == "api"
    # The first release has nothing to watch against: that phase is skipped.
    assert [p["status"] for p in first["phases"]] == ["skipped" if p == "watch" else "done" for p in Deployment.PHASES if p != "canary"]
    assert stack.get("pushed.localhost") == (200, "v1")
    logs = api.get(f"/api/deployments/{first['id']}/logs").json()
    assert [line["seq"] for line in logs] == list(range(1, len(logs) + 1))
    assert "==> switch" in [line["text"] for line in logs]

    v2_sha = app_repo.commit_version("v2")
    second = api.post("/api/apps/pushed/deploy", {"ref": "main"}, content_type="application/json")
    assert second.status_code == 202, second.content
    second = _wait_final(api, second.json()["id"])

    assert second["state"] == "succeeded", second["error"]
    assert second["commit"] == v2_sha
    assert stack.get("pushed.localhost") == (200, "v2")
    listed = api.get("/api/apps/pushed/deployments").json()
    assert [(d["id"], d["commit"]) for d in listed] == [(second["id"], v2_sha), (first["id"], v1_sha)]
    assert api.get("/api/apps/pushed").json()["live_deployment"] == second["id"]
    for response in (api.get("/api/apps"), api.get("/api/apps/pushed"), api.get("/api/apps/pushed/deployments")):
        assert NEW_VALUE not in response.content.decode()



# HTTPS ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ADMINS)
def test_an_admin_uploads_a_certificate_for_the_apps_domain_and_goes_back_to_acme(world, role):
    world.app.domains.create(hostname="billing.example.com")
    ca = PrivateCA("billing's CA")
    own, other = ca.issue(["billing.example.com"]), ca.issue(["elsewhere.example.com"])
    client = world.client(role)
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
    assert AuditEvent.objects.filter(action="certificate.upload", app=world.app).exists()

    back = send(client, "delete", url)
    assert (back.status_code, back.json()["source"], back.json()["status"]) == (200, "acme", "pending")
    assert send(client, "delete", url).status_code == 409


def test_the_panels_own_domain_cannot_be_an_apps(world, redis_server, settings):
    settings.SWITCHYARD = {**settings.SWITCHYARD, "PANEL_DOMAIN": "panel.example.com"}
    before = db_state()

    response = send(world.client("owner"), "patch", f"/api/apps/{APP}", {"domains": ["Panel.Example.com"]})

    assert response.status_code == 400
    assert "is the panel's own domain" in detail(response)
    assert db_state() == before


# Deploy events ----------------------------------------------------------------------------------

def test_notification_targets_are_added_listed_and_deleted_and_bad_ones_refused(world):
    client = world.client("owner")
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


def test_the_commit_status_token_is_stored_encrypted_and_never_shown(world):
    response = send(world.client("owner"), "put", f"/api/apps/{APP}/commit-status-token", {"token": "ghp_s3cret"})

    assert response.status_code == 204
    app = App.objects.get(pk=world.app.pk)
    assert app.commit_status_token == "ghp_s3cret" and "ghp_s3cret" not in app.encrypted_commit_status_token
    assert "ghp_s3cret" not in world.client("owner").get(f"/api/apps/{APP}").content.decode()

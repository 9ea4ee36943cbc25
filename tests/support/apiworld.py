"""What the REST API's tests (tests/web/test_api_*.py) act on: one app with every role around it
(`World`, made by `create`), every endpoint by name, and what a request could have changed."""
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.test import Client

from deployments.git import source
from deployments.models import ApiToken, App, Deployment, Domain, EnvVar, EventDelivery, Membership, NotificationTarget
from tests.support import panelworld

APP = "billing-api"  # the app panelworld.create makes, its secret and the value tests set
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
    "set_registry_credentials": ("put", "/api/apps/{app}/registry-credentials"),
    "list_event_deliveries": ("get", "/api/apps/{app}/events"),
}
APP_ENDPOINTS = [name for name in ENDPOINTS if name not in ("list_apps", "create_app")]
READ_ENDPOINTS = ["get_app", "list_deployments", "get_deployment", "logs", "get_certificate"]
DEPLOYER_ENDPOINTS = ["deploy", "cancel", "redeploy", "abort"]
ADMIN_ENDPOINTS = ["update_app", "delete_app", "upload_certificate", "use_acme_certificate",
                   "list_notification_targets", "add_notification_target", "set_commit_status_token",
                   "set_registry_credentials",
                   "list_event_deliveries"]


@dataclass
class World:
    users: dict
    tokens: dict
    app: App
    release: Deployment  # succeeded, with an image; has log lines
    queued: Deployment
    repo_url: str  # the app's repository, on this machine
    # What an ordinary user may create an app from: a remote (answered as git would, see `answer_as_the_remote`).
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
            "set_registry_credentials": {"host": "registry.example.com", "username": "bot", "password": "tok"},
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


def detail(response) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = response.json()
    assert list(body) == ["detail"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]



def answer_as_the_remote(monkeypatch) -> None:
    """No git host is reachable here: World.remote_url answers as a remote with a main branch
    would; every other URL goes to git (which may use local files only in tests). Its compose
    files (read when a Compose app is created) name each service the app routes to."""
    read_remote = source.remote_branches
    monkeypatch.setattr(source, "remote_branches",
                        lambda url, access=None: ["main"] if url == World.remote_url else read_remote(url, access))
    read_file = source.read_remote_file
    monkeypatch.setattr(source, "read_remote_file", lambda url, branch, path, max_bytes, access: (
        "services: {web: {build: .}, front: {build: .}}" if url == World.remote_url
        else read_file(url, branch, path, max_bytes, access)))


def create(*, user_model, repo_url: str) -> World:
    """The panel pages' app and people (tests/support/panelworld.py: the same rows), each person
    with a token."""
    panel = panelworld.create(user_model=user_model, repo_url=repo_url)
    tokens = {role: ApiToken.issue(user, "t")[1] for role, user in panel.users.items()}
    return World(users=panel.users, tokens=tokens, app=panel.app, release=panel.release, queued=panel.queued,
                 repo_url=repo_url)

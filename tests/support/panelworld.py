"""What the panel's page tests (tests/web/test_views_*.py) act on: one app with every role around
it (`World`, made by `create`), every page and action by route name, and what an action could have
changed."""
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from deployments import app_tabs
from deployments.application import domains
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.models import App, Deployment, Domain, EnvVar, LogLine, Membership

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



def request(client: Client, world: World, name: str, method: str, **extra):
    if method == "get":
        return client.get(world.url(name), **extra)
    return client.post(world.url(name), world.data(name), **extra)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]



# The tab an action's form is on, where the action comes back to.
HOME_TABS = {"zero_downtime": "settings", "app_settings": "settings", "env_set": "environment",
             "env_delete": "environment", "member_set": "members", "member_remove": "members", "app_delete": "settings",
             "redeploy": "deployments"}


def home_tab(action: str) -> str:
    return reverse("app_tab", kwargs={"name": APP, "tab": HOME_TABS[action]})



def current_tab(response) -> str:
    """The tab the tab bar marks as the current page (exactly one)."""
    marked = re.findall(r'<a href="[^"]*" data-tab="([a-z]+)" aria-current="page">', response.content.decode())
    assert len(marked) == 1, marked
    return marked[0]



def create(*, user_model, repo_url: str) -> World:
    """The app (from `repo_url`), its owner, a member of each role, an outsider and a superuser;
    an env var; a succeeded release with log lines and a queued deployment."""
    users = {name: user_model.objects.create_user(name) for name in ("owner", "viewer", "deployer", "admin", "outsider")}
    users["superuser"] = user_model.objects.create_superuser("root")
    app = App.objects.create(name=APP, repo_url=repo_url, owner=users["owner"])
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

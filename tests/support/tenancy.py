"""A tenant as the limits tests (tests/stack/test_limits_*.py) make one: a non-superuser with apps
of their own and an API token, the settings the administrator changes for a block, and what a
deployment stored of its log."""
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from deployments.application import apps
from deployments.application.app_settings import AppSpec
from deployments.models import ApiToken, App, Deployment, LogLine
from tests.support.apprepo import AppRepo
from tests.support.stack import TEST_ACTOR

MIB = 1024 * 1024
CGROUPS = Path("/sys/fs/cgroup")


def make_tenant(name: str = "tenant"):
    return get_user_model().objects.create_user(name, password="a long enough password 1")


def token_client(user) -> Client:
    """A test client that sends a new API token of `user` with every request."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user, 't')[1]}")


def patch_app(client: Client, app: str, body: dict):
    return client.patch(f"/api/apps/{app}", body, content_type="application/json")


def deploy_by_api(client: Client, name: str) -> Deployment:
    response = client.post(f"/api/apps/{name}/deploy", {}, content_type="application/json")
    assert response.status_code == 202, response.content
    return Deployment.objects.get(pk=response.json()["id"])


def own_app(repo: AppRepo, owner, name: str, **fields) -> App:
    """As a superuser (or the CLI) creates an app for a user: the repository is on this machine."""
    return apps.create_app(AppSpec.of(name=name, repo_url=repo.url, **fields), actor=TEST_ACTOR, owner=owner)


def switchyard_settings(**values):
    """SWITCHYARD with `values` changed, for a block or a test (override_settings)."""
    return override_settings(SWITCHYARD={**settings.SWITCHYARD, **values})


def stored_log(deployment: Deployment) -> list[str]:
    return list(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))


def commit_compose(repo: AppRepo, text: str) -> str:
    """Commits `text` as the repository's compose.yaml; returns the commit."""
    (repo.path / "compose.yaml").write_text(text)
    return repo._commit("compose")

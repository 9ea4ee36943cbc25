"""Fixtures of the web process's tests."""
import time
from types import SimpleNamespace

import django_ratelimit.core
import pytest
from django.conf import settings
from django.test import Client

from deployments import enqueue
from deployments.models import ApiToken, App
from tests.support import apiworld, browser, panelworld
from tests.support.apprepo import AppRepo


@pytest.fixture
def committed_per_request(db, monkeypatch, django_capture_on_commit_callbacks) -> None:
    """The database of a test on `db` (one transaction, rolled back at the end: no flush), with
    each test-client request ending as in production: its on-commit callbacks (a deployment
    handed to the queue, routing handed to a worker, events recorded) run when the request
    returns. Without this they would never run, the test's transaction never commits."""
    send = Client.request

    def request_then_commit(self, **request):
        with django_capture_on_commit_callbacks(execute=True):
            return send(self, **request)

    monkeypatch.setattr(Client, "request", request_then_commit)


@pytest.fixture
def full_rejection_budgets(redis_server, monkeypatch):
    """Webhook tests: every test starts with untouched budgets of rejected deliveries (the test
    client always comes from 127.0.0.1; the count is in the suite's Redis), inside one rate-limit
    window: django-ratelimit's clock stands still, so no minute ends mid-test."""
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for key in redis_server.scan_iter(match=f"{prefix}:*"):
        redis_server.delete(key)
    frozen = time.time()
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: frozen))


@pytest.fixture(scope="module")
def released_repo(tmp_path_factory) -> AppRepo:
    """One repository with release v1 for a whole module whose tests only read it (apps are
    created from its URL, the panel lists its branches): a git repository per test cost each
    test a `git init`, a copy of busybox and a commit."""
    repo = AppRepo(tmp_path_factory.mktemp("released") / "repo")
    repo.commit_version("v1")
    return repo


@pytest.fixture
def tenants(transactional_db, django_user_model, app_repo, tmp_path):
    """Two non-superusers, each with an app (made by the CLI from a repository on this machine) and a token."""
    app_repo.commit_version("v1")
    found = {}
    for name in ("ann", "bob"):
        user = django_user_model.objects.create_user(name, password=f"pw-{name}-1234567")
        app = App.objects.create(name=f"{name}-app", repo_url=app_repo.url, owner=user)
        found[name] = (user, app, ApiToken.issue(user, "t")[1])
    return found


@pytest.fixture
def dispatched(request, monkeypatch) -> list[int] | None:
    """Ids of deployments handed to the queue, recorded instead of sent: a Celery worker left
    running by an earlier test of the session would build and start them. Tests that use the
    real stack are left alone: their worker must get the task. (Modules whose every test needs
    this say so with `pytestmark = pytest.mark.usefixtures("dispatched")`.)"""
    if "stack" in request.fixturenames:
        return None
    sent = []
    monkeypatch.setattr(enqueue, "send", sent.append)
    return sent


@pytest.fixture
def api_world(committed_per_request, redis_server, django_user_model, released_repo, monkeypatch,
              handed_over) -> apiworld.World:
    """The REST API's app with every role around it (tests/support/apiworld.py)."""
    apiworld.answer_as_the_remote(monkeypatch)
    return apiworld.create(user_model=django_user_model, repo_url=released_repo.url)


@pytest.fixture
def panel_world(committed_per_request, redis_server, django_user_model, released_repo, handed_over) -> panelworld.World:
    """The panel pages' app with every role around it (tests/support/panelworld.py)."""
    return panelworld.create(user_model=django_user_model, repo_url=released_repo.url)


@pytest.fixture
def page(panel_server):
    """A headless Chromium page on the running panel (tests/support/browser.py)."""
    with browser.panel_page(panel_server) as page:
        yield page

"""A new app's config is checked by HAProxy before the router lock is taken (every other change
of HAProxy waits for that lock), and checked again under it only if something it reads changed."""
from collections import OrderedDict

import pytest

from deployments.engine import locks
from deployments.haproxy import challenges, files, process as haproxy_process
from deployments.models import App, Deployment
from deployments.traffic import changes, target

TOKEN = "token-of-another-order"


@pytest.fixture
def checks(monkeypatch) -> list[bool]:
    """For each `haproxy -c` from now on: whether the router lock was taken while it ran. The
    configs this process saw accepted before (by an earlier test) are forgotten."""
    monkeypatch.setattr(files, "_accepted", OrderedDict())
    seen: list[bool] = []
    check = haproxy_process.check_config

    def spied(path) -> None:
        seen.append(locks.router_lock_taken())
        check(path)
    monkeypatch.setattr(haproxy_process, "check_config", spied)
    return seen


@pytest.fixture
def serving(stack, app_repo) -> App:
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="web")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    return app


def test_a_new_apps_config_is_checked_once_before_the_router_lock_and_routed(stack, serving, app_repo, checks):
    App.objects.create(name="second", repo_url=app_repo.url)

    changes.apps_changed()

    assert checks == [False]
    assert "backend app_second_blue" in target.paths().config.read_text()
    assert stack.get("web.localhost") == (200, "v1")


def test_a_file_changed_after_the_check_ahead_is_checked_again_under_the_lock(stack, serving, app_repo, checks,
                                                                             monkeypatch):
    App.objects.create(name="second", repo_url=app_repo.url)
    location = target.paths()
    lock = locks.router_lock

    def after_the_check_ahead():  # another change of a file HAProxy reads comes first
        with location.challenges_map.open("a") as entries:
            entries.write(f"{TOKEN} key-authorization\n")
        return lock()
    monkeypatch.setattr(changes, "router_lock", after_the_check_ahead)

    try:
        changes.apps_changed()
    finally:  # the file and the running HAProxy, which the reload gave it, are shared with later tests
        challenges.withdraw(location, TOKEN)

    assert checks == [False, True]
    assert "backend app_second_blue" in location.config.read_text()
    assert stack.get("web.localhost") == (200, "v1")

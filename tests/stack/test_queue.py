"""One deployment per app at a time; the newest queued one wins; apps deploy side by side."""
from deployments.engine import lifecycle
from deployments.models import Deployment

SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "3"]\n'


def test_deployments_of_one_app_run_one_after_another_and_newest_queued_wins(stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile=SLOW_BUILD)
    app = stack.create_app(app_repo)
    first = stack.deploy(app)
    stack.wait_for_state(first, Deployment.State.RUNNING)

    app_repo.commit_version("v2", extra_dockerfile=SLOW_BUILD)
    second = stack.deploy(app)
    third = stack.deploy(app)
    first, third = stack.wait(first), stack.wait(third)
    second.refresh_from_db()

    assert first.state == third.state == Deployment.State.SUCCEEDED
    assert second.state == Deployment.State.SUPERSEDED and f"#{third.id}" in second.error
    assert second.started_at is None
    assert third.started_at >= first.finished_at
    assert stack.get(f"{app.name}.localhost") == (200, "v2")


def test_deployments_of_different_apps_run_side_by_side(stack, tmp_path):
    from tests.support.apprepo import AppRepo

    apps = []
    for name in ("left", "right"):
        repo = AppRepo(tmp_path / name)
        repo.commit_version(name, extra_dockerfile=SLOW_BUILD)
        apps.append(stack.create_app(repo, name=name))
    left, right = [stack.deploy(app) for app in apps]
    left, right = stack.wait(left), stack.wait(right)

    assert left.state == right.state == Deployment.State.SUCCEEDED, (left.error, right.error)
    assert left.started_at < right.finished_at and right.started_at < left.finished_at
    assert stack.get("left.localhost") == (200, "left")
    assert stack.get("right.localhost") == (200, "right")


def test_claim_refuses_a_second_deployment_while_one_runs(transactional_db, app_repo):
    from deployments.models import App

    app = App.objects.create(name="solo", repo_url=app_repo.url)
    one = Deployment.objects.create(app=app, ref="main")
    two = Deployment.objects.create(app=app, ref="main")

    assert lifecycle.claim(one.id) is True
    assert lifecycle.claim(two.id) is False
    assert lifecycle.claim(one.id) is False  # running twice is refused too
    two.refresh_from_db()
    assert two.state == Deployment.State.QUEUED

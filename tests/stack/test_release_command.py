"""A release command runs once in the new image, with the app's environment, before the release starts."""
from deployments.engine import lifecycle
from deployments.dockerd import containers
from deployments.dockerd.values import name_prefix
from deployments.models import App, Deployment

# The new image's page and an environment variable's length (its value is masked in the log, as
# every env value is), so the log shows where and with what it ran.
MIGRATE = "/bin/busybox sh -c 'echo migrating to $(cat /www/index.html) on a ${#DATABASE_NAME}-letter name'"


def _log(deployment: Deployment) -> str:
    return "\n".join(deployment.log_lines.values_list("text", flat=True))


def test_the_release_command_runs_in_the_new_image_with_the_apps_environment(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, env={"DATABASE_NAME": "orders"}, release_command=MIGRATE)

    deployment = stack.deploy_and_wait(app)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    log = _log(deployment)
    assert "[release] migrating to v1 on a 6-letter name" in log, log
    assert log.index("Release command done") < log.index(f"Started {name_prefix()}-")
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    assert [c.deployment for c in containers.listed(app.name)] == [str(deployment.id)]  # its container is gone


def test_a_failing_release_command_leaves_the_old_release_serving(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    good = stack.deploy_and_wait(app)
    assert good.state == Deployment.State.SUCCEEDED, good.error
    App.objects.filter(pk=app.pk).update(release_command="/bin/busybox sh -c 'echo relation missing >&2; exit 3'")
    app_repo.commit_version("v2")

    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        load.wait_for(100)
        bad = stack.wait(stack.deploy(app))
        load.wait_for(load.result.total + 100)

    assert bad.state == Deployment.State.FAILED
    assert "start failed" in bad.error and "exited with code 3" in bad.error, bad.error
    assert "[release] relation missing" in _log(bad)
    assert load.result.failed == [], f"{len(load.result.failed)} of {load.result.total} failed"
    assert set(load.result.bodies()) == {"v1"}
    assert App.objects.get(pk=app.pk).live_deployment_id == good.id
    assert [c.deployment for c in containers.listed(app.name)] == [str(good.id)]


def test_a_cancel_stops_a_running_release_command(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, release_command="/bin/busybox sleep 600")

    deployment = stack.deploy(app)
    stack.eventually(lambda: "Release command:" in _log(deployment), "the release command starts", timeout=60)
    assert lifecycle.request_cancel(deployment.id, "test") == lifecycle.CancelOutcome.REQUESTED
    deployment = stack.wait(deployment, timeout=30)

    assert deployment.state == Deployment.State.CANCELLED, deployment.error
    assert containers.listed(app.name) == []

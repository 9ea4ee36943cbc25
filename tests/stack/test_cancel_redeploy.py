"""Cancel stops a deployment before the switch; Redeploy rolls back to a kept image without a build."""
import time

from django.conf import settings

from deployments.application import apps, deploys
from deployments.application.apps import AppChanges
from deployments.application.errors import NotPossible
from deployments.audit import Actor
from deployments.dockerd import containers, images
from deployments.models import App, Deployment
from deployments.traffic import readings

SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "30"]\n'


def test_cancel_during_build_stops_it_and_old_release_keeps_serving(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    live = stack.deploy_and_wait(app)

    app_repo.commit_version("v2", extra_dockerfile=SLOW_BUILD)
    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        deployment = stack.deploy(app)
        stack.wait_for_state(deployment, Deployment.State.RUNNING)
        stack.wait_for_state_phase(deployment, "build")
        deploys.cancel(deployment, actor=Actor.cli("alice"))
        deployment = stack.wait(deployment, timeout=20)  # far less than the 30 s the build sleeps

    assert (deployment.state, deployment.error) == (Deployment.State.CANCELLED, "cancelled by alice during build")
    assert load.result.failed == [] and set(load.result.bodies()) == {"v1"}
    assert App.objects.get(pk=app.pk).live_deployment_id == live.id
    assert [c.deployment for c in containers.listed(app.name)] == [str(live.id)]
    assert not images.image_exists(f"{app.image_repository()}:{app_repo._git('rev-parse', 'HEAD')[:12]}")


def test_cancel_during_verify_removes_new_containers(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, health_deadline=30)
    live = stack.deploy_and_wait(app)

    app_repo.commit_never_listens()
    deployment = stack.deploy(app)
    stack.wait_for_state_phase(deployment, "verify")
    deploys.cancel(deployment, actor=Actor.cli("bob"))
    deployment = stack.wait(deployment, timeout=20)

    assert deployment.state == Deployment.State.CANCELLED and "during verify" in deployment.error
    assert [c.deployment for c in containers.listed(app.name)] == [str(live.id)]
    assert stack.get(f"{app.name}.localhost") == (200, "v1")


def test_queued_deployment_cancels_at_once_and_never_runs(stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile='RUN ["/bin/busybox", "sleep", "3"]\n')
    app = stack.create_app(app_repo)
    first = stack.deploy(app)
    stack.wait_for_state(first, Deployment.State.RUNNING)
    second = stack.deploy(app)

    deploys.cancel(second, actor=Actor.cli("carol"))

    assert stack.wait(first).state == Deployment.State.SUCCEEDED
    second.refresh_from_db()
    assert second.state == Deployment.State.CANCELLED and second.started_at is None


def test_cancel_after_the_switch_is_refused(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    done = stack.deploy_and_wait(app)

    try:
        deploys.cancel(done, actor=Actor.cli("dave"))
        raise AssertionError("cancelling a finished deployment should be refused")
    except NotPossible as refusal:
        assert "already ended" in str(refusal)


def test_redeploy_rolls_back_to_a_kept_image_without_building(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    first = stack.deploy_live(app)
    app_repo.commit_version("v2")
    stack.deploy_live(app)
    assert stack.get(f"{app.name}.localhost") == (200, "v2")

    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        load.wait_for(100)
        rollback = stack.wait(deploys.redeploy(first, actor=Actor.cli("erin")))
        load.wait_for(load.result.total + 100)

    assert rollback.state == Deployment.State.SUCCEEDED, rollback.error
    assert rollback.image == first.image and rollback.commit_sha == first.commit_sha
    assert "fetch" not in rollback.phase_times and "build" not in rollback.phase_times
    assert not any("Step 1/" in t for t in rollback.log_lines.values_list("text", flat=True))
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    assert load.result.failed == [] and set(load.result.bodies()) == {"v1", "v2"}


def test_editing_settings_keeps_the_live_release_routed_and_healthy(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stale = App.objects.get(pk=app.pk)  # loaded before the deploy moved traffic to the other colour
    stack.deploy_live(app)

    # /ready does not exist in v1: checking the live release with it would take it DOWN.
    apps.update_app(stale, AppChanges(settings={"health_path": "/ready"}, domains=["web.example.com"]), actor=Actor.cli("test"))
    stack.eventually(lambda: stack.get("web.example.com")[0] != 404, "the worker routes web.example.com")
    time.sleep(5 * settings.SWITCHYARD["HAPROXY_CHECK_INTERVAL_MS"] / 1000)  # five HAProxy checks (DOWN after 2)

    assert stack.get("web.example.com") == (200, "v1")
    assert readings.live_health([App.objects.select_related("live_deployment").get(pk=app.pk)]) == {app.name: "UP"}


def test_env_values_never_reach_the_log(stack, app_repo):
    app_repo.commit_version("v1", cmd='["/bin/busybox", "sh", "-c", "echo token is $API_TOKEN; exit 1"]')
    app = stack.create_app(app_repo, env={"API_TOKEN": "tok-9f8e7d6c5b"}, health_deadline=5)

    failed = stack.deploy_and_wait(app)

    assert failed.state == Deployment.State.FAILED
    log = "\n".join(failed.log_lines.values_list("text", flat=True))
    assert "token is ****" in log and "tok-9f8e7d6c5b" not in log
    assert "tok-9f8e7d6c5b" not in failed.error

"""zero_downtime off: the old release stops before the new one starts (recreate)."""
from deployments.dockerd import containers
from deployments.models import App, Deployment


def test_recreate_replaces_release_with_a_short_503_gap(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, zero_downtime=False)
    first = stack.deploy_and_wait(app)
    assert first.state == Deployment.State.SUCCEEDED, first.error

    app_repo.commit_version("v2")
    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        load.wait_for(100)
        second = stack.wait(stack.deploy(app))
        load.wait_for(load.result.total + 100)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert stack.get(f"{app.name}.localhost") == (200, "v2")
    assert {a.status for a in load.result.answers} <= {200, 503}, [a.body for a in load.result.answers if a.status == 0][:3]
    assert any("Recreate: stopping the running release first" in t for t in second.log_lines.values_list("text", flat=True))
    assert [c.deployment for c in containers.listed(app.name)] == [str(second.id)]


def test_failed_recreate_starts_the_old_release_again(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, zero_downtime=False, health_deadline=3)
    first = stack.deploy_and_wait(app)

    app_repo.commit_health_404()
    bad = stack.deploy_and_wait(app)

    assert bad.state == Deployment.State.FAILED and "status 404" in bad.error
    assert App.objects.get(pk=app.pk).live_deployment_id == first.id
    assert stack.get(f"{app.name}.localhost") == (200, "v1")
    assert [c.deployment for c in containers.listed(app.name)] == [str(first.id)]

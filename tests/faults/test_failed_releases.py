"""A release that fails before the switch never touches the one that serves."""
import pytest

from deployments.dockerd import containers
from deployments.models import App, Deployment

CGI_HEALTH = {"health_path": "/cgi-bin/health"}

# name: (how the bad release is committed, app fields, what the reason must say)
BAD_RELEASES = {
    "build error": (lambda repo: repo.commit_build_error(), {}, ["build failed", "does-not-exist"]),
    "exits at boot": (lambda repo: repo.commit_exit_at_boot(), {},
                      ["verify failed", "exited with code 3", "config missing: DATABASE_URL"]),
    "health 404": (lambda repo: repo.commit_health_404(), {}, ["verify failed", "GET /health", "status 404"]),
    "health 500": (lambda repo: repo.commit_cgi_health_500(), CGI_HEALTH, ["verify failed", "status 500"]),
    "never listens": (lambda repo: repo.commit_never_listens(), {}, ["verify failed", "nothing listens on port 8000"]),
}


@pytest.mark.parametrize("kind", BAD_RELEASES)
def test_failed_release_keeps_old_release_serving(stack, app_repo, kind):
    commit_bad, fields, reason_parts = BAD_RELEASES[kind]
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, health_deadline=5, **fields)
    good = stack.deploy_and_wait(app)
    assert good.state == Deployment.State.SUCCEEDED, good.error

    commit_bad(app_repo)
    with stack.load(f"{app.name}.localhost", max_seconds=60) as load:
        load.wait_for(100)
        bad = stack.wait(stack.deploy(app))
        load.wait_for(load.result.total + 100)

    assert bad.state == Deployment.State.FAILED
    for part in reason_parts:
        assert part in bad.error, bad.error
    assert load.result.failed == [], f"{len(load.result.failed)} of {load.result.total} failed"
    assert set(load.result.bodies()) == {"v1"}
    assert App.objects.get(pk=app.pk).live_deployment_id == good.id
    assert not bad.holds_backend
    assert [c.deployment for c in containers.listed(app.name)] == [str(good.id)]
    log = "\n".join(bad.log_lines.values_list("text", flat=True))
    assert log.endswith(f"Deployment failed: {bad.error}")

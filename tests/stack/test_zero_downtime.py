"""A new release replaces the old one under load without a single failed request."""
from deployments.dockerd import containers
from deployments.models import Deployment


def test_v2_replaces_v1_under_load_with_every_request_answered(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, domains=["shop.example.com"])
    first = stack.deploy_and_wait(app)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert stack.get("shop.example.com") == (200, "v1")

    v2_sha = app_repo.commit_version("v2")
    with stack.load("shop.example.com", max_requests=20000, max_seconds=90) as load:
        load.wait_for(200)
        second = stack.wait(stack.deploy(app))
        load.wait_for(2000)
    result = load.result

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert second.commit_sha == v2_sha
    assert result.total >= 2000
    assert result.failed == [], f"{len(result.failed)} failed, e.g. {result.failed[:3]}"
    assert set(result.bodies()) == {"v1", "v2"}
    # Each client moved from v1 to v2 once and never back.
    for bodies in result.per_thread_bodies().values():
        assert bodies[0] == "v1" and bodies[-1] == "v2"
        assert "v1" not in bodies[bodies.index("v2"):]
    assert stack.get(f"{app.name}.localhost") == (200, "v2")
    assert [c.deployment for c in containers.listed(app.name)] == [str(second.id)]
    # HAProxy's own count agrees: both releases served during the deployment, none failed.
    assert second.traffic["old"]["requests"] > 0 and second.traffic["new"]["requests"] > 0
    assert second.traffic["old"]["failed"] == second.traffic["new"]["failed"] == 0


def test_every_phase_is_timed_and_logged_in_order(stack, app_repo):
    app_repo.commit_version("v1")
    deployment = stack.deploy_and_wait(stack.create_app(app_repo))

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    ran = [p for p in Deployment.PHASES if p not in ("watch", "canary")]  # no previous release: nothing to watch against
    assert list(deployment.phase_times) == ran
    assert all(deployment.phase_duration(p) >= 0 for p in ran)
    lines = list(deployment.log_lines.values_list("seq", "text"))
    assert [seq for seq, _ in lines] == list(range(1, len(lines) + 1))
    phase_marks = [text for _, text in lines if text.startswith("==> ")]
    assert phase_marks == [f"==> {p}" for p in ran]
    assert any("Successfully built" in text for _, text in lines)


def test_unknown_host_gets_404_and_app_answers_on_its_localhost_name(stack, app_repo):
    app_repo.commit_version("hello")
    app = stack.create_app(app_repo, name="greeter")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED

    assert stack.get("greeter.localhost") == (200, "hello")
    assert stack.get("GREETER.localhost:8080") == (200, "hello")
    status, body = stack.get("nobody.example.com")
    assert status == 404 and "No app" in body

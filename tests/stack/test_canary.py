"""Canary deploys: the new release takes a growing share of the live traffic by HAProxy server
weights, is compared with the old on each step, and is rolled back at once when worse."""
import http.client
from datetime import datetime

from deployments.application import deploys
from deployments.dockerd import containers
from deployments.models import App, Deployment
from tests.support.stack import TEST_ACTOR


def _canary_app(stack, app_repo, **fields) -> App:
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, replicas=2, **fields)
    first = stack.deploy_and_wait(app)  # no canary without a release to compare with
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert "canary" not in first.phase_times
    app.refresh_from_db()
    return app


def test_a_release_failing_one_request_in_ten_is_rolled_back_at_the_first_step(stack, app_repo):
    app = _canary_app(stack, app_repo, canary_steps=[5, 25, 50, 100], canary_step_seconds=30)
    live = app.live_deployment_id
    app_repo.commit_page_failing("v2", one_in=10)

    with stack.load(f"{app.name}.localhost", path="/cgi-bin/page", max_seconds=120) as load:
        load.wait_for(200)
        deployment = stack.wait(stack.deploy(app))
        load.wait_for(load.result.total + 200)

    assert deployment.state == Deployment.State.ROLLED_BACK, deployment.error
    assert "canary at 5%: 5xx" in deployment.error, deployment.error
    assert deployment.rollback_reason == "canary-5xx"
    [step] = deployment.canary["steps"]
    assert step["percent"] == 5 and step["verdict"] == "worse"
    assert step["new"]["5xx"] > 0 and step["old"]["5xx"] == 0
    assert deployment.canary["verdict"] == "rolled back"
    failed = len(load.result.failed)
    assert failed < 0.01 * load.result.total, f"{failed} of {load.result.total} failed"
    assert App.objects.get(pk=app.pk).live_deployment_id == live
    assert {c.deployment for c in containers.listed(app.name)} == {str(live)}
    last = load.result.answers[-100:]
    assert {a.body for a in last} == {"v1"}


def test_a_healthy_canary_follows_its_steps_to_100_percent_by_itself(stack, app_repo):
    app = _canary_app(stack, app_repo, canary_steps=[20, 50, 100], canary_step_seconds=3)
    app_repo.commit_version("v2")

    with stack.load(f"{app.name}.localhost", max_seconds=120) as load:
        load.wait_for(200)
        deployment = stack.deploy(app)
        stack.wait_for_state_phase(deployment, "canary", percent=50)
        sticky = _sticky_client_bodies(stack.port, f"{app.name}.localhost", requests=30)
        deployment = stack.wait(deployment)
        load.wait_for(load.result.total + 200)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert load.result.failed == [], f"{len(load.result.failed)} of {load.result.total} failed"
    steps = deployment.canary["steps"]
    assert [(s["percent"], s["verdict"]) for s in steps] == [(20, "as good"), (50, "as good")]
    for step in steps:
        observed = _share_of(load.result.answers, "v2", step)
        assert abs(observed - step["percent"]) <= 5, f"step {step['percent']}%: {observed:.1f}% observed"
        assert step["new"]["p95_ms"] is not None and step["old"]["p95_ms"] is not None
    assert len(set(sticky)) == 1, sticky  # one client, one release, though the split is 50/50
    assert stack.get(f"{app.name}.localhost") == (200, "v2")


def _share_of(answers, body: str, step: dict) -> float:
    """Percent of the answers within the step's window (its first half second left out: the new
    weights reach HAProxy just after the window opens) that came from `body`'s release."""
    start = datetime.fromisoformat(step["started_at"]).timestamp() + 0.5
    end = datetime.fromisoformat(step["ended_at"]).timestamp()
    inside = [a for a in answers if start <= a.started and a.at <= end]
    assert len(inside) > 100, f"only {len(inside)} answers in the step's window"
    return 100 * sum(a.body == body for a in inside) / len(inside)


def _sticky_client_bodies(port: int, host: str, requests: int) -> list[str]:
    """A client that sends back the cookie it got, on a new connection for each request."""
    cookie, bodies = "", []
    for _ in range(requests):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/", headers={"Host": host, **({"Cookie": cookie} if cookie else {})})
            response = connection.getresponse()
            set_cookie = response.getheader("Set-Cookie")
            if set_cookie:
                cookie = set_cookie.split(";", 1)[0]
            bodies.append(response.read().decode().strip())
        finally:
            connection.close()
    return bodies


def test_abort_sends_all_traffic_back_at_once(stack, app_repo):
    app = _canary_app(stack, app_repo, canary_steps=[50, 100], canary_step_seconds=300)
    live = app.live_deployment_id
    app_repo.commit_version("v2")
    deployment = stack.deploy(app)
    stack.wait_for_state_phase(deployment, "canary", percent=50)

    deploys.abort(deployment, actor=TEST_ACTOR)
    deployment = stack.wait(deployment, timeout=30)

    assert deployment.state == Deployment.State.ROLLED_BACK
    assert f"aborted by {TEST_ACTOR.name}" in deployment.error, deployment.error
    assert deployment.canary["steps"][0]["verdict"] == "aborted"
    assert App.objects.get(pk=app.pk).live_deployment_id == live
    assert {stack.get(f"{app.name}.localhost")[1] for _ in range(20)} == {"v1"}


def test_promote_skips_the_remaining_steps(stack, app_repo):
    app = _canary_app(stack, app_repo, canary_steps=[5, 25, 100], canary_step_seconds=300)
    app_repo.commit_version("v2")
    deployment = stack.deploy(app)
    stack.wait_for_state_phase(deployment, "canary", percent=5)

    deploys.promote(deployment, actor=TEST_ACTOR)
    deployment = stack.wait(deployment, timeout=60)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert [(s["percent"], s["verdict"]) for s in deployment.canary["steps"]] == [(5, "promoted")]
    assert deployment.canary["verdict"] == "promoted"
    assert {stack.get(f"{app.name}.localhost")[1] for _ in range(20)} == {"v2"}

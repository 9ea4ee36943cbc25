"""Compose apps against the real stack (Docker, HAProxy, Celery, Redis): a web service with two
replicas reading a counter from a store service that keeps it in a named volume, and a worker
adding to it (tests/support/composerepo.py)."""
import datetime
import re

import pytest

from deployments.application import deploys
from deployments.dockerd import containers, daemon
from deployments.dockerd.values import name_prefix
from deployments.models import App, Deployment
from tests.support.composerepo import ComposeRepo
from tests.support.stack import TEST_ACTOR

PAGE = re.compile(r"^(v\d+) count=(\d+) writer=(\S*)$")
# The health deadline for a release whose check never passes: verify waits that long, so it is
# short (a release that must pass gets 60 s on a loaded machine).
FAILING_DEADLINE = 10


@pytest.fixture
def compose_repo(tmp_path) -> ComposeRepo:
    return ComposeRepo(tmp_path / "repo")


def page(stack, host: str) -> tuple[str, int, str]:
    """(release, count, writer) as the web service answers it."""
    status, body = stack.get(host, "/cgi-bin/page")
    assert status == 200, body
    release, count, writer = PAGE.match(body).groups()
    return release, int(count), writer


def store_of(deployment: Deployment):
    return next(s for s in deployment.services if s.name == "store")


def worker_of(deployment: Deployment):
    return next(s for s in deployment.services if s.name == "worker")


def deploy_under_load(stack, app, host: str) -> tuple[Deployment, list]:
    with stack.load(host, path="/cgi-bin/page", max_requests=20000, max_seconds=120) as load:
        load.wait_for(100)
        deployment = stack.wait(stack.deploy(app), timeout=180)
        load.wait_for(load.result.total + 200)
    return deployment, load.result


def _release_v1(stack, compose_repo: ComposeRepo, host: str) -> tuple[App, Deployment]:
    """The counter app's first release: two web replicas, its store and its worker writing."""
    compose_repo.commit_release("v1")
    app = stack.create_app(compose_repo, name="counter", compose_file="compose.yaml", domains=[host],
                           health_deadline=60)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert len(first.containers) == 2  # the web service's deploy.replicas
    stack.eventually(lambda: page(stack, host)[2] == "worker-v1", "the v1 worker writes", timeout=20)
    return app, first


def _v2_keeps_the_store(stack, compose_repo: ComposeRepo, app: App, host: str,
                        first: Deployment) -> tuple[Deployment, int]:
    """v2 leaves the store as it was: the same container serves on; the v1 worker goes. Returns
    the deployment and the count v2's page showed first."""
    compose_repo.commit_release("v2")
    second, load = deploy_under_load(stack, app, host)
    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    assert store_of(second).containers == store_of(first).containers and store_of(second).started_by == first.id
    lines = list(second.log_lines.values_list("text", flat=True))
    for service in ("web", "store", "worker"):  # each service's lines say whose they are
        assert any(line.startswith(f"[{service}] ") for line in lines), f"no [{service}] line in the log"
    release, count_after_v2, _ = page(stack, host)
    assert release == "v2"
    stack.eventually(lambda: page(stack, host)[2] == "worker-v2", "the v2 worker writes", timeout=20)
    assert not containers.state(worker_of(first).containers[0].id).running  # the v1 worker is gone
    return second, count_after_v2


def _v3_replaces_the_store_and_the_count_goes_on(stack, compose_repo: ComposeRepo, app: App, host: str, *,
                                                 first: Deployment, second: Deployment, count_after_v2: int) -> Deployment:
    """v3 changes the store's definition: a new container on the same volume; the count goes on."""
    store = store_of(first).containers
    compose_repo.commit_release("v3", store_format=2)
    third, load = deploy_under_load(stack, app, host)
    assert third.state == Deployment.State.SUCCEEDED, third.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    assert store_of(third).containers != store and store_of(third).started_by == third.id
    assert containers.state(store[0].id).status == "removed"
    release, count, _ = page(stack, host)
    assert release == "v3" and count > count_after_v2
    stack.eventually(lambda: page(stack, host)[2] == "worker-v3", "the v3 worker writes", timeout=20)
    assert not containers.state(worker_of(second).containers[0].id).running  # the v2 worker is gone
    counts = [int(PAGE.match(a.body).group(2)) for a in load.answers if a.status == 200]
    assert counts and min(counts) >= count_after_v2  # never reset
    return third


def _a_broken_web_release_is_refused_and_v3_runs_on(stack, compose_repo: ComposeRepo, app: App, host: str,
                                                    third: Deployment) -> None:
    """Refused before the switch; every v3 service keeps running."""
    App.objects.filter(pk=app.pk).update(health_deadline=FAILING_DEADLINE)  # what never passes is waited for
    compose_repo.commit_release("v4", store_format=2, web_health=False)
    broken, load = deploy_under_load(stack, app, host)
    assert broken.state == Deployment.State.FAILED and broken.phase == "verify", broken.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    assert page(stack, host)[0] == "v3"
    assert all(containers.state(c.id).running for s in third.services for c in s.containers)
    stack.eventually(lambda: page(stack, host)[2] == "worker-v3", "the v3 worker still writes", timeout=20)
    assert not any(c.deployment == str(broken.id) for c in containers.listed(app.name))
    App.objects.filter(pk=app.pk).update(health_deadline=60)


def _redeploy_v1_on_the_same_volume(stack, host: str, first: Deployment, count_before: int) -> None:
    """Every service goes back to that release (the store to v1's definition), on the same volume."""
    redeployed = stack.wait(deploys.redeploy(first, actor=TEST_ACTOR), timeout=180)
    assert redeployed.state == Deployment.State.SUCCEEDED, redeployed.error
    assert {s.name: s.image for s in redeployed.services} == {s.name: s.image for s in first.services}
    assert redeployed.image == first.image and store_of(redeployed).started_by == redeployed.id
    release, count, _ = page(stack, host)
    assert release == "v1" and count >= count_before
    stack.eventually(lambda: page(stack, host)[2] == "worker-v1", "the v1 worker writes again", timeout=20)


def test_three_releases_under_load_keep_the_store_and_its_counter(stack, compose_repo):
    host = "counter.example.com"
    app, first = _release_v1(stack, compose_repo, host)
    second, count_after_v2 = _v2_keeps_the_store(stack, compose_repo, app, host, first)
    third = _v3_replaces_the_store_and_the_count_goes_on(stack, compose_repo, app, host, first=first, second=second,
                                                         count_after_v2=count_after_v2)
    _a_broken_web_release_is_refused_and_v3_runs_on(stack, compose_repo, app, host, third)
    _, count_before_redeploy, _ = page(stack, host)
    _redeploy_v1_on_the_same_volume(stack, host, first, count_before_redeploy)


def test_a_web_service_that_cannot_run_twice_is_recreated_and_says_why(stack, app_repo):
    app_repo.commit_version("v1")
    (app_repo.path / "compose.yaml").write_text("services:\n  web:\n    build: .\n    container_name: front\n")
    app_repo._commit("compose v1")
    app = stack.create_app(app_repo, name="fixed", compose_file="compose.yaml")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    app_repo.commit_version("v2")

    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    reason = ("Recreate instead of zero-downtime: service web: container_name 'front': one container at a time can "
              "have a name")
    assert reason in list(second.log_lines.values_list("text", flat=True))
    assert [c.name for c in second.containers] == [f"{name_prefix()}-fixed_front"]
    assert stack.get("fixed.localhost") == (200, "v2")


GATED = """services:
  web:
    build: .
    depends_on: {{store: {{condition: service_healthy}}}}
    healthcheck: {{test: [CMD, /bin/busybox, {web_check}], interval: 1s, retries: 1}}
  store:
    build: .
    command: [/bin/busybox, sh, -c, "mkdir -p /tmp; (sleep {store_ready_after}; touch /tmp/ready) & exec /bin/busybox httpd -f -p 7000 -h /www"]
    volumes: [data:/data]
    healthcheck:
      test: [CMD, /bin/busybox, test, -f, /tmp/ready]
      interval: 1s
      retries: 30
volumes:
  data: {{}}
"""
STORE_READY_AFTER = 3


def started_at(container_id: str) -> datetime.datetime:
    started = daemon.client().api.inspect_container(container_id)["State"]["StartedAt"]
    return datetime.datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")


def test_service_healthy_and_the_web_services_healthcheck_gate_its_start_and_its_switch(stack, app_repo):
    app_repo.commit_version("v1")
    (app_repo.path / "compose.yaml").write_text(GATED.format(web_check='"true"', store_ready_after=STORE_READY_AFTER))
    app_repo._commit("compose v1")
    app = stack.create_app(app_repo, name="gated", compose_file="compose.yaml", health_deadline=20)

    first = stack.deploy_and_wait(app)

    assert first.state == Deployment.State.SUCCEEDED, first.error
    store = store_of(first).containers[0]
    waited = (started_at(first.containers[0].id) - started_at(store.id)).total_seconds()
    assert waited >= STORE_READY_AFTER, f"web started {waited:.1f}s after the store, before it was healthy"
    lines = list(first.log_lines.values_list("text", flat=True))
    healthy = lines.index(f"[store] {store.name} is healthy")
    assert healthy < next(i for i, line in enumerate(lines) if line.startswith("[web] Started "))
    assert f"[web] {first.containers[0].name}: healthcheck passed (Docker reports healthy)" in lines

    # v2's web answers its HTTP health check, but its compose healthcheck fails: refused before the switch.
    app_repo.commit_version("v2")
    (app_repo.path / "compose.yaml").write_text(GATED.format(web_check='"false"', store_ready_after=STORE_READY_AFTER))
    app_repo._commit("compose v2")
    App.objects.filter(pk=app.pk).update(health_deadline=FAILING_DEADLINE)
    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.FAILED and second.phase == "verify", second.error
    assert "its healthcheck did not pass in time (Docker reports unhealthy)" in second.error
    assert stack.get("gated.localhost") == (200, "v1")
    assert containers.state(store.id).running  # unchanged: the same store serves on


def test_a_refused_compose_file_fails_the_deployment_before_anything_runs(stack, compose_repo):
    compose_repo.commit_release("v1")
    app = stack.create_app(compose_repo, name="refused", compose_file="compose.yaml")
    text = (compose_repo.path / "compose.yaml").read_text()  # changed after the app was created
    (compose_repo.path / "compose.yaml").write_text(text.replace("  store:\n", "  store:\n    network_mode: host\n"))
    compose_repo._commit("host network")

    deployment = stack.wait(stack.deploy(app), timeout=60)

    assert deployment.state == Deployment.State.FAILED and deployment.phase == "fetch"
    assert "services.store.network_mode: host not supported: every service runs on the app's own network" \
           in deployment.error
    assert containers.listed(app.name) == []


def test_a_worker_that_fails_in_the_drain_leaves_the_new_web_release_serving_and_the_old_worker_working(
        stack, compose_repo):
    compose_repo.commit_release("v1")
    app = stack.create_app(compose_repo, name="drainer", compose_file="compose.yaml", health_deadline=60)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    compose_repo.commit_release("v2", worker_crashes=True)

    second = stack.wait(stack.deploy(app), timeout=180)

    assert second.state == Deployment.State.FAILED and second.phase == "drain", second.error
    assert "service worker: " in second.error and "no queue configured" in second.error
    host = f"{app.name}.localhost"
    assert page(stack, host)[0] == "v2"  # the web release that passed its checks serves
    stack.reconcile()
    assert containers.state(worker_of(first).containers[0].id).running  # still the app's worker
    stack.eventually(lambda: page(stack, host)[2] == "worker-v1", "the v1 worker still writes", timeout=20)


def test_a_rollback_in_the_watch_brings_back_the_store_the_release_had_replaced(stack, compose_repo):
    compose_repo.commit_release("v1")
    app = stack.create_app(compose_repo, name="rollback", compose_file="compose.yaml", health_deadline=60,
                           health_path="/cgi-bin/health", watch_window=30)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    host = f"{app.name}.localhost"
    stack.eventually(lambda: page(stack, host)[1] > 0, "the v1 worker writes", timeout=20)
    compose_repo.commit_release("v2", store_format=2, health_breaks_after=6)

    second = stack.wait(stack.deploy(app), timeout=180)

    assert second.state == Deployment.State.ROLLED_BACK, second.error
    old_store = store_of(first).containers[0]
    assert containers.state(old_store.id).running
    assert [c.name for c in containers.listed(app.name) if c.id == old_store.id] == [old_store.name]
    assert second.services == []
    release, count, _ = page(stack, host)
    assert release == "v1" and count > 0
    stack.reconcile()
    assert containers.state(old_store.id).running

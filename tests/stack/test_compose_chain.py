"""A web service with a chain (front → backend → store, and a one-shot migrate the backend waits
for), against the real stack: the front and its backend are replaced blue/green together under
load, each answer from one release's pair (never a new front with an old backend), the store and
its volume kept, the old chain and its network gone after the drain; a failing migrate leaves the
running release serving (tests/support/chainrepo.py)."""
import re

import pytest

from deployments.dockerd import containers, daemon
from deployments.dockerd.release_networks import ensure_release_network, release_network_name
from deployments.models import Deployment
from tests.support.chainrepo import ChainRepo

ANSWER = re.compile(r"^front-(v\d) backend-(v\d) migrations=(\S*)$")
HOST = "chain.example.com"


@pytest.fixture
def chain_repo(tmp_path) -> ChainRepo:
    return ChainRepo(tmp_path / "repo")


def answer(stack) -> tuple[str, str, str]:
    status, body = stack.get(HOST, "/cgi-bin/page")
    assert status == 200, body
    return ANSWER.match(body).groups()


def service(deployment: Deployment, name: str):
    return next(s for s in deployment.services if s.name == name)


def network_exists(name: str) -> bool:
    return any(n["Name"] == name for n in daemon.client().api.networks(names=[name]))


def deploy_under_load(stack, app):
    with stack.load(HOST, path="/cgi-bin/page", max_requests=20000, max_seconds=120) as load:
        load.wait_for(100)
        deployment = stack.wait(stack.deploy(app), timeout=180)
        load.wait_for(load.result.total + 200)
    return deployment, load.result


def test_the_web_services_chain_is_replaced_with_it_under_load_and_a_failing_migration_keeps_it(stack, chain_repo):
    chain_repo.commit_release("v1")
    app = stack.create_app(chain_repo, name="chain", compose_file="compose.yaml", web_service="front",
                           domains=[HOST], health_path="/cgi-bin/page", health_deadline=60)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert answer(stack) == ("v1", "v1", "v1,")
    assert {s.name: s.role for s in first.services} == {"store": "stateful", "backend": "chain"}

    chain_repo.commit_release("v2")
    second, load = deploy_under_load(stack, app)

    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    pairs = {ANSWER.match(a.body).groups()[:2] for a in load.answers}
    assert pairs <= {("v1", "v1"), ("v2", "v2")} and ("v2", "v2") in pairs, pairs
    assert answer(stack) == ("v2", "v2", "v1,v2,")
    assert service(second, "store").containers == service(first, "store").containers  # kept, its volume too
    assert all(containers.state(c.id).status == "removed" for c in service(first, "backend").containers)
    assert not network_exists(release_network_name(app.name, first.id))
    assert network_exists(release_network_name(app.name, second.id))
    lines = list(second.log_lines.values_list("text", flat=True))
    started = [i for i, line in enumerate(lines) if line.startswith(("[backend] started", "[front] Started"))]
    assert lines[started[0]].startswith("[backend] started")  # the chain before the web containers

    chain_repo.commit_release("v3", migrate_exit=3)
    third, load = deploy_under_load(stack, app)

    assert third.state == Deployment.State.FAILED and third.phase == "start", third.error
    assert "service migrate: exited with code 3" in third.error and "migrating to v3" in third.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    assert answer(stack)[:2] == ("v2", "v2")
    assert not any(c.deployment == str(third.id) for c in containers.listed(app.name))
    assert not network_exists(release_network_name(app.name, third.id))
    stack.reconcile()  # the live release's network and chain are its own: kept
    assert network_exists(release_network_name(app.name, second.id)) and answer(stack)[:2] == ("v2", "v2")


def test_a_rollback_in_the_watch_removes_the_new_chain_the_old_one_serves_on_reconcile_keeps_its_network(stack, chain_repo):
    chain_repo.commit_release("v1")
    app = stack.create_app(chain_repo, name="chain", compose_file="compose.yaml", web_service="front",
                           domains=[HOST], health_path="/cgi-bin/health", health_deadline=60, watch_window=30)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    chain_repo.commit_release("v2", health_breaks_after=6)

    second = stack.wait(stack.deploy(app), timeout=180)

    assert second.state == Deployment.State.ROLLED_BACK, second.error
    assert answer(stack)[:2] == ("v1", "v1")
    assert all(containers.state(c.id).running for c in service(first, "backend").containers)
    assert not any(c.deployment == str(second.id) for c in containers.listed(app.name))
    assert not network_exists(release_network_name(app.name, second.id))
    assert network_exists(release_network_name(app.name, first.id))
    stray = ensure_release_network(app.name, 10**7)  # of no deployment that runs, serves or backs one
    stack.reconcile()
    assert not network_exists(stray) and network_exists(release_network_name(app.name, first.id))

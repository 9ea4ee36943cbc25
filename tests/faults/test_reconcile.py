"""reconcile: HAProxy, containers and deployments brought back in line with the database."""
from datetime import timedelta

from django.utils import timezone

from deployments.dockerd import containers
from deployments.engine.locks import reconcile_lock, router_lock
from deployments.models import Deployment
from tests.support.processes import haproxy_commands, kill_haproxy


def test_killed_haproxy_comes_back_routing_to_the_live_release(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    stack.deploy_live(app)
    app_repo.commit_version("v2")
    stack.deploy_live(app)  # the live release is now on the other colour than at first
    # Anything that changes HAProxy starts it if it is down: the worker's periodic reconcile, and
    # any routing change (under the router lock; seen once: a connection reset by an HAProxy
    # starting under the probe). Holding both, nobody but this test touches HAProxy meanwhile.
    with reconcile_lock() as held, router_lock():
        assert held
        kill_haproxy()
        try:
            answer = stack.get(f"{app.name}.localhost")
        except ConnectionRefusedError:
            answer = None
        except OSError as error:  # something still held the port: say what, for the next look
            answer = f"{error!r}; HAProxy processes left: {haproxy_commands()}"
        assert answer is None, f"HAProxy still answered after being killed: {answer}"

    output = stack.reconcile()

    assert stack.get(f"{app.name}.localhost") == (200, "v2")
    assert "HAProxy config, map and servers match the database" in output



def test_reconcile_removes_containers_no_release_owns(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    live = stack.deploy_and_wait(app)
    assert live.state == Deployment.State.SUCCEEDED, live.error
    stray = containers.start_release_container(app.name, "999999", 0, live.image, 8000, {},
                                               containers.ContainerLimits.defaults())

    stack.reconcile()

    remaining = {c.id for c in containers.listed(app.name)}
    assert stray.id not in remaining
    assert remaining == {c.id for c in live.containers}
    assert stack.get(f"{app.name}.localhost") == (200, "v1")


def test_reconcile_fails_a_deployment_whose_worker_died(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    long_ago = timezone.now() - timedelta(hours=1)
    orphan = Deployment.objects.create(app=app, ref="main", state=Deployment.State.RUNNING, phase="build",
                                       started_at=long_ago, heartbeat_at=long_ago)

    stack.reconcile()

    orphan.refresh_from_db()
    assert orphan.state == Deployment.State.FAILED
    assert orphan.error == "build failed: the worker stopped during build; it never went live, nothing serves"
    # The app is free to deploy again.
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED


def test_a_queued_deployment_whose_task_was_lost_runs_after_reconcile(stack, app_repo):
    """Deployments are rows: after a restart (tasks lost with the broker), reconcile picks them up."""
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    orphan = Deployment.objects.create(app=app, ref="main")  # queued, never handed to a worker

    stack.reconcile()

    assert stack.wait(orphan).state == Deployment.State.SUCCEEDED
    assert stack.get(f"{app.name}.localhost") == (200, "v1")

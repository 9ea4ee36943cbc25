"""HAProxy checks the slots a deployment will take from before its build (engine/phases/verify.py,
arm): DOWN at an address that refuses, so that a new server is UP within the down interval of
getting its address; a deployment that ends before its servers are published puts the slots back
in maintenance; and once UP, a server is checked at the normal interval again, not the fast one."""
import time

from django.conf import settings

from deployments.dockerd import containers, daemon
from deployments.traffic import readings
from tests.support.eventually import eventually

SLOW_FAILING_BUILD = 'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 4; exit 1"]\n'


def _slot(app, colour: str):
    (server,) = readings.servers(app, colour, 1)
    return server


def test_the_slots_are_armed_during_the_build_and_put_back_in_maintenance_when_it_fails(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="armed")
    assert stack.deploy_and_wait(app).state == "succeeded"
    app.refresh_from_db()
    idle = app.idle_colour
    assert _slot(app, idle).status == "MAINT"

    app_repo.commit_version("slow failing build", extra_dockerfile=SLOW_FAILING_BUILD)
    deployment = stack.deploy(app)
    def armed_in_the_build() -> bool:
        deployment.refresh_from_db()
        return deployment.phase == "build" and _slot(app, idle).status == "DOWN"
    eventually(armed_in_the_build, "the idle colour's slot armed while the build runs", 30)
    assert _slot(app, idle).check.startswith("L4CON"), _slot(app, idle).describe()
    assert stack.get("armed.localhost") == (200, "v1")  # the live colour is untouched

    assert stack.wait(deployment).state == "failed"
    assert _slot(app, idle).status == "MAINT"
    assert stack.get("armed.localhost") == (200, "v1")


def test_a_live_server_is_checked_at_the_normal_interval_not_the_down_one(stack, app_repo):
    app_repo.commit_counted_health("v1")
    app = stack.create_app(app_repo, name="counted", health_path="/cgi-bin/health")
    assert stack.deploy_and_wait(app).state == "succeeded"
    app_repo.commit_counted_health("v2")  # a second deploy: its slot was armed, and is live now
    deployment = stack.deploy_and_wait(app)
    assert deployment.state == "succeeded" and stack.get("counted.localhost") == (200, "v2")
    container = deployment.containers[0]

    window = 3.0
    before = _checks(container.id)
    time.sleep(window)
    checked = _checks(container.id) - before
    interval = settings.SWITCHYARD["HAPROXY_CHECK_INTERVAL_MS"] / 1000
    # Every interval, give or take a check; at the down interval (100 ms) it would be 30.
    assert 1 <= checked <= window / interval + 2, checked
    assert containers.state(container.id).running


def _checks(container_id: str) -> int:
    """The health calls the container answered so far (HAProxy's checks; nothing else calls it now)."""
    result = daemon.client().containers.get(container_id).exec_run(["/bin/busybox", "wc", "-l", "/www/checks"])
    return int(result.output.decode().split()[0])

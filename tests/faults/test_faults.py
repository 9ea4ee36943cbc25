"""Fault injection against the real stack, with a load running through HAProxy: the pool
process running a deployment SIGKILLed in each phase, HAProxy SIGKILLed, Redis stopped and
started during a deploy, and the Docker daemon restarted.

For this module the worker runs with a short heartbeat timeout and reconcile period, and each
phase pauses FAULT_PAUSE seconds once it has started, so that a phase that otherwise lasts
milliseconds (the switch) can be hit. Times are printed (`pytest -s` shows them).
"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from django.conf import settings
from django.utils import timezone

from deployments.dockerd import containers, daemon
from deployments.dockerd.values import LABEL_INSTANCE
from deployments.engine.locks import reconcile_lock
from deployments.models import App, Deployment, LogLine
from panel.celery import app as celery_app
from tests.support.composerepo import ComposeRepo
from tests.support.eventually import eventually
from tests.support.processes import alive, kill_haproxy

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_TIMEOUT = 5  # beats every second in tests (tests/support/settings.py): 4 may be missed
RECONCILE_INTERVAL = 2
FAULT_PAUSE = 0.5  # the test sees the phase and kills within ~50 ms (polled every 20 ms)
FAULT_ENV = {"SWITCHYARD_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
             "SWITCHYARD_RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
             "SWITCHYARD_FAULT_PAUSE": str(FAULT_PAUSE)}
ENDS_WITHIN = 60  # seconds from the kill to the deployment's end (issue 9)
WATCH_WINDOW = 20
BEFORE_SWITCH = ["fetch", "build", "start", "verify", "switch"]
AFTER_SWITCH = ["watch", "drain"]
ACTIVE = [Deployment.State.QUEUED, Deployment.State.RUNNING]
# The Docker daemon may be shared with other runs, and versions before images.app_images
# looked at the instance label pruned every image of a repository (switchyard/NAME), so a
# build of another run's "web" was removed between its build and its start: names of our own.
APP_NAME = f"faults-{os.environ['SWITCHYARD_TEST_RUN']}"


@pytest.fixture(scope="module")
def fault_worker(celery_worker):
    """The suite's worker with the short timeouts; the default one again afterwards, even if a test failed."""
    try:
        celery_worker.restart(**FAULT_ENV)
        yield celery_worker
    finally:
        celery_worker.restart()


@pytest.fixture
def faults(fault_worker, stack):
    yield stack
    if fault_worker.process.poll() is not None:  # a test found it dead: the next one gets a new one
        fault_worker.restart(**FAULT_ENV)


class WorkerExited(AssertionError):
    """The Celery worker process itself is gone (not one of its pool processes)."""


def _wait_while_the_worker_runs(stack, deployment: Deployment, worker, timeout: float = 120) -> Deployment:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.wait(deployment, timeout=1)
        except TimeoutError:
            if worker.process.poll() is not None:
                errors = [line for line in worker.log_path.read_text().splitlines() if "Unrecoverable error" in line]
                raise WorkerExited(f"the Celery worker exited (code {worker.process.returncode}) while "
                                   f"deployment #{deployment.id} waited: {errors[-1:] or 'see worker.log'}") from None
            if time.monotonic() > deadline:
                raise


def _host(app: App) -> str:
    return f"{app.name}.localhost"


def _live_app(stack, app_repo, **fields) -> tuple[App, Deployment]:
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, APP_NAME, **fields)
    v1 = stack.deploy_and_wait(app)
    assert v1.state == Deployment.State.SUCCEEDED, v1.error
    return app, v1


def _pool_pid(deployment: Deployment, task_name: str = "deployments.tasks.run_deployment", timeout: float = 20) -> int:
    """The pid of the pool process running the deployment's task, as the workers report it (at
    once, unlike the log line "Worker process PID on HOST": stored with the next line, which
    in fetch comes after its pause). After verify that task is continue_deployment, on the watch
    worker. Asked of that worker alone: with limit=1 and no destination the first reply, often
    an idle worker's, was the only one read, and fetch could pass while the test asked again."""
    worker = f"{'watch' if task_name.endswith('continue_deployment') else 'celery'}@{socket.gethostname()}"

    def reported() -> int | None:
        # A connection of its own each time: a pooled one is stale once the Redis test has
        # restarted Redis ("Connection closed by server" for the next test that asks).
        with celery_app.connection_for_read() as connection:
            active = celery_app.control.inspect([worker], timeout=1, limit=1, connection=connection).active()
        for tasks in (active or {}).values():
            for task in tasks:
                if task["name"] == task_name and list(task["args"])[0] == deployment.id:
                    return task["worker_pid"]
        return None
    return eventually(reported, f"a pool process reporting deployment #{deployment.id}", timeout, interval=0)


def _wait_for_phase(deployment: Deployment, phase: str, timeout: float = 90) -> None:
    def reached() -> bool:
        state, current = Deployment.objects.values_list("state", "phase").get(pk=deployment.pk)
        assert current == phase or state in ACTIVE, f"deployment #{deployment.id} ended {state} in {current} before {phase}"
        return current == phase
    eventually(reached, f"deployment #{deployment.id} reaching {phase}", timeout, interval=0.02)


def _log(deployment: Deployment) -> str:
    return "\n".join(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))


def _wait_for_log_line(deployment: Deployment, line: str, timeout: float = 10) -> None:
    """Reconcile ends a deployment first and says why right after (a line, not the error)."""
    eventually(lambda: line in _log(deployment), lambda: f"{line!r} in the log:\n{_log(deployment)}", timeout, interval=0.1)


def _wait_for_containers(app: App, expected: set[str], timeout: float = 20) -> None:
    """Until the app's containers (running or not) are exactly `expected`."""
    def found() -> set[str]:
        return {c.id for c in containers.listed(app.name)}
    eventually(lambda: found() == expected, lambda: f"containers {found()} being the live release's {expected}", timeout,
               interval=0.2)


def _until_answers(stack, app: App, body: str, timeout: float) -> float:
    """Seconds until the app answers 200 with `body` through HAProxy (polled every 20 ms)."""
    started = time.monotonic()
    seen = [""]

    def answered() -> float | None:
        try:
            answer = stack.get(_host(app))
        except (OSError, http.client.HTTPException) as error:
            seen[0] = f"{type(error).__name__}: {error}"
            return None
        seen[0] = str(answer)
        return max(time.monotonic() - started, 1e-9) if answer == (200, body) else None
    return eventually(answered, lambda: f"{app.name} answering {body} (last: {seen[0]})", timeout, interval=0.02)


def _assert_no_failed(load) -> None:
    result = load.stop()
    assert result.total > 0
    assert not result.failed, (f"{len(result.failed)} of {result.total} requests failed, e.g. "
                               f"{[(a.status, a.body[:80]) for a in result.failed[:5]]}")


def _deploy_next_release(stack, app: App, app_repo, worker) -> None:
    App.objects.filter(pk=app.pk).update(watch_window=0)  # nothing left to show by watching v3
    app_repo.commit_version("v3")
    v3 = _wait_while_the_worker_runs(stack, stack.deploy(app), worker)
    assert v3.state == Deployment.State.SUCCEEDED, v3.error
    assert stack.get(_host(app)) == (200, "v3")


@pytest.mark.parametrize("phase", BEFORE_SWITCH + AFTER_SWITCH)
def test_a_deployment_whose_worker_is_killed_ends_by_itself_and_a_release_keeps_serving(faults, fault_worker, app_repo,
                                                                                        phase):
    app, v1 = _live_app(faults, app_repo, watch_window=WATCH_WINDOW if phase == "watch" else 0)
    app_repo.commit_version("v2")
    with faults.load(_host(app), max_seconds=240) as load:
        load.wait_for(20)
        v2 = faults.deploy(app)
        faults.wait_for_state(v2, Deployment.State.RUNNING)
        if phase == "watch":  # carried on by the watch worker
            _wait_for_phase(v2, phase)
            pid = _pool_pid(v2, "deployments.tasks.continue_deployment")
        else:
            pid = _pool_pid(v2)
            _wait_for_phase(v2, phase)
        os.kill(pid, signal.SIGKILL)
        killed_at = timezone.now()

        v2 = faults.wait(v2, timeout=ENDS_WITHIN)
        ended_after = (v2.finished_at - killed_at).total_seconds()
        print(f"\nkilled during {phase}: {v2.state} {ended_after:.1f}s after the kill")
        if phase != "fetch":  # the line is stored with the next one, after fetch's pause
            assert f"Worker process {pid} on " in _log(v2)
        app.refresh_from_db()
        if phase in BEFORE_SWITCH:
            assert v2.state == Deployment.State.FAILED
            assert v2.error == f"{phase} failed: the worker stopped during {phase}; it never went live, " \
                               f"deployment #{v1.id} serves"
            live, body = v1, "v1"
        else:
            assert v2.state == Deployment.State.SUCCEEDED, v2.error
            _wait_for_log_line(v2, f"reconcile: the worker stopped during {phase}; this release serves and passed "
                                   f"its checks, so it is kept and the previous release was retired; marked succeeded")
            live, body = v2, "v2"
        assert app.live_deployment_id == live.id
        assert faults.get(_host(app)) == (200, body)
        _wait_for_containers(app, {c.id for c in live.containers})

        _deploy_next_release(faults, app, app_repo, fault_worker)
    _assert_no_failed(load)


@contextmanager
def _periodic_reconcile_held_off(timeout: float = 30) -> Iterator[None]:
    """Hold the reconcile lock, so the periodic reconcile (which also starts a HAProxy that is
    down) skips its runs: what brings HAProxy back is then the supervisor alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with reconcile_lock() as acquired:
            if acquired:
                yield
                return
        time.sleep(0.1)
    raise TimeoutError(f"a reconcile held its lock for {timeout}s")


@contextmanager
def _haproxy_supervisor(log_path: Path) -> Iterator[Path]:
    """`manage.py haproxy` as `make run` runs it; SIGTERM at the end (it stops HAProxy too:
    the next test's stack starts it again)."""
    process = subprocess.Popen([sys.executable, "manage.py", "haproxy"], cwd=ROOT,
                               env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"},
                               stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        eventually(lambda: "HAProxy serves apps on" in log_path.read_text() or process.poll() is not None,
                   lambda: f"manage.py haproxy starting:\n{log_path.read_text()}", 30, interval=0.1)
        assert process.poll() is None, f"manage.py haproxy exited:\n{log_path.read_text()}"
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_killed_haproxy_answers_again_within_2_seconds_by_its_supervisor(faults, app_repo, tmp_path):
    app, _ = _live_app(faults, app_repo)
    with _haproxy_supervisor(tmp_path / "supervisor.log") as log_path, _periodic_reconcile_held_off():
        kill_haproxy()
        recovered_after = _until_answers(faults, app, "v1", timeout=10)
        print(f"\nHAProxy SIGKILLed: the app answered again after {recovered_after:.2f}s")
        assert "HAProxy is not answering; starting it again" in log_path.read_text()
    assert recovered_after < 2


def test_redis_stopped_during_a_build_the_deploy_ends_cleanly_and_nothing_stays_stuck(
        faults, fault_worker, app_repo, redis_server, client, django_user_model):
    app, v1 = _live_app(faults, app_repo)
    app_repo.commit_version("v2", extra_dockerfile='RUN ["/bin/busybox", "sleep", "5"]\n')
    client.force_login(django_user_model.objects.create_user("someone"))
    assert 'id="redis-down"' not in client.get("/").content.decode()
    with faults.load(_host(app), max_seconds=240) as load:
        load.wait_for(20)
        v2 = faults.deploy(app)
        _wait_for_phase(v2, "build")
        redis_server.stop()
        try:
            down_page = client.get("/").content.decode()
            time.sleep(3)  # the build goes on meanwhile
        finally:
            redis_server.start()
        assert 'id="redis-down"' in down_page
        assert 'id="redis-down"' not in client.get("/").content.decode()

        v2 = _wait_while_the_worker_runs(faults, v2, fault_worker, timeout=90)
        print(f"\nRedis stopped during the build: the deployment {v2.state} {v2.error}")
        assert v2.state in (Deployment.State.SUCCEEDED, Deployment.State.FAILED)
        if v2.state == Deployment.State.FAILED:
            assert v2.error
        assert faults.get(_host(app)) == (200, "v2" if v2.state == Deployment.State.SUCCEEDED else "v1")
    _assert_no_failed(load)
    assert not Deployment.objects.filter(state__in=ACTIVE).exists()
    assert fault_worker.process.poll() is None, "the Celery worker exited"

    _deploy_next_release(faults, app, app_repo, fault_worker)


DOCKER_PIDFILE = Path("/var/run/docker.pid")


def _docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def _start_dockerd() -> None:
    """As `make run` and `make test` do: scripts/services.sh (which waits for `docker info`)."""
    subprocess.run(["bash", "scripts/services.sh"], cwd=ROOT, env={**os.environ, "NO_REDIS": "1"}, check=True,
                   capture_output=True, timeout=90)


def _stop_dockerd(timeout: float = 60) -> None:
    pid = int(DOCKER_PIDFILE.read_text())
    os.kill(pid, signal.SIGTERM)
    eventually(lambda: not alive(pid), f"dockerd ({pid}) gone after SIGTERM", timeout, interval=0.1)


def _foreign_containers() -> list[str]:
    """Running containers of the daemon that this run did not start (another test run, a panel)."""
    ours = settings.SWITCHYARD["INSTANCE"]
    return [c["Names"][0].lstrip("/") for c in daemon.client().api.containers()
            if c["Labels"].get(LABEL_INSTANCE) != ours]


# It stops every container of the daemon for several seconds: `serial`, run after the parallel part.
@pytest.mark.serial
def test_docker_daemon_restarted_live_containers_come_back_and_are_routed_to(faults, app_repo):
    app, v1 = _live_app(faults, app_repo)
    if foreign := _foreign_containers():
        pytest.skip(f"the Docker daemon runs containers of others ({', '.join(foreign[:5])}): not restarting it")
    booted = {c.id: _started_at(c.id) for c in v1.containers}
    try:
        with faults.load(_host(app), threads=2, max_seconds=120) as load:
            started = time.monotonic()
            _stop_dockerd()
            stopped = time.monotonic()
            _start_dockerd()
            back = time.monotonic()
            answered_after = _until_answers(faults, app, "v1", timeout=60)
    finally:
        if not _docker_answers():
            _start_dockerd()
    failed = load.result.failed
    print(f"\nDocker daemon restart: stopped in {stopped - started:.1f}s, started in {back - stopped:.1f}s, "
          f"the app answered {answered_after:.1f}s after that; {len(failed)} of {load.result.total} requests failed"
          + (f" over {failed[-1].at - failed[0].started:.1f}s" if failed else ""))
    v1.refresh_from_db()
    listed = {c.id: c for c in containers.listed(app.name)}
    assert set(listed) == {c.id for c in v1.containers}
    assert all(c.state == "running" for c in listed.values())
    assert all(_started_at(container_id) > booted[container_id] for container_id in booted), "never restarted"
    assert [c.ip for c in v1.containers] == [containers.address(c.id) for c in v1.containers]


def _started_at(container_id: str) -> str:
    return daemon.client().api.inspect_container(container_id)["State"]["StartedAt"]  # ISO 8601, UTC: sortable


def test_a_compose_deployment_whose_worker_is_killed_in_the_watch_keeps_the_old_workers_running(faults, fault_worker,
                                                                                                 tmp_path):
    """After the switch, before the drain replaced the workers: reconcile keeps the new web release,
    and the previous release's worker and store go on running (the app's only ones) until the next
    deploy replaces them."""
    repo = ComposeRepo(tmp_path / "compose")
    repo.commit_release("v1")
    app = faults.create_app(repo, f"{APP_NAME}-c", compose_file="compose.yaml", watch_window=WATCH_WINDOW)
    v1 = _wait_while_the_worker_runs(faults, faults.deploy(app), fault_worker)
    assert v1.state == Deployment.State.SUCCEEDED, v1.error
    old_services = [c.id for s in v1.services for c in s.containers]
    repo.commit_release("v2")
    v2 = faults.deploy(app)
    _wait_for_phase(v2, "watch")
    os.kill(_pool_pid(v2, "deployments.tasks.continue_deployment"), signal.SIGKILL)

    v2 = faults.wait(v2, timeout=ENDS_WITHIN)

    assert v2.state == Deployment.State.SUCCEEDED, v2.error
    faults.reconcile()
    assert all(containers.state(container).running for container in old_services)
    assert faults.get(_host(app), "/cgi-bin/page")[1].startswith("v2 ")
    App.objects.filter(pk=app.pk).update(watch_window=0)
    repo.commit_release("v3")
    v3 = _wait_while_the_worker_runs(faults, faults.deploy(app), fault_worker)
    assert v3.state == Deployment.State.SUCCEEDED, v3.error
    faults.reconcile()
    worker_v1 = next(c.id for s in v1.services if s.name == "worker" for c in s.containers)
    assert containers.state(worker_v1).status == "removed"
    assert faults.get(_host(app), "/cgi-bin/page")[1].startswith("v3 ")

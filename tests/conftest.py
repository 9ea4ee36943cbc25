"""Real services for the suite: a Redis and a Celery worker started here, HAProxy started by
the engine itself, and the machine's Docker daemon. Everything they create is removed at
the end (containers, images and the network carry this run's instance label)."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from deployments import enqueue
from deployments.engine import egress
from deployments.dockerd import cleanup, containers, daemon, networks
from deployments.haproxy import process as haproxy_process
from deployments.traffic import changes, target
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually
from tests.support.processes import answers, free_port
from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(settings.DATA_DIR)


def _stop(*processes: subprocess.Popen) -> None:
    """SIGTERM to each process group at once, then each waited for (SIGKILL after 20 s): a Celery
    worker's warm shutdown takes seconds, and the suite restarts its three often."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class RedisServer(redis.Redis):
    """A client of the suite's Redis (what most tests need) that also stops and starts the
    server on the same port (the fault-injection tests). Nothing is persisted: a restart
    comes back empty, as a Redis without persistence does."""

    process: subprocess.Popen | None = None
    also_on: tuple[str, ...] = ()  # addresses besides the loopback (the multi-host rig's bridge)

    def start(self) -> None:
        port = self.connection_pool.connection_kwargs["port"]
        password = self.connection_pool.connection_kwargs.get("password")
        process = self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", *self.also_on, *(["--requirepass", password] if password else []),
             "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(DATA_DIR)],
            stdout=open(DATA_DIR / "redis.log", "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        eventually(lambda: _pings(self) or process.poll() is not None, "redis-server did not answer", 10)
        assert process.poll() is None, f"redis-server exited:\n{(DATA_DIR / 'redis.log').read_text()[-3000:]}"

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@pytest.fixture(scope="session")
def django_db_modify_db_settings_xdist_suffix():
    """pytest-django would name each xdist worker's test database apart; here each worker has a
    data dir of its own already (tests/support/settings.py), and the Celery workers it starts find
    the database by the name the settings give, so the name stays as it is."""


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer.from_url(settings.REDIS_URL)
    server.start()
    yield server
    server.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


class Worker:
    """The suite's Celery workers (with beat), real processes as the Procfile has them: the deploy
    worker; the control worker (routing, periodic tasks, deploy events), which must never wait
    behind builds; and the watch worker, where deployments carry on after verify. restart() swaps
    their environment (the fault-injection tests shorten the heartbeat timeout and the reconcile period)."""

    log_path = DATA_DIR / "worker.log"

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self._ready_lines = 0  # "ready." lines in the log from earlier starts

    def start(self, **env: str) -> None:
        self.processes = [self._start([settings.CELERY_TASK_DEFAULT_QUEUE, "--beat"], env),
                          self._start([f"{settings.CONTROL_QUEUE},{settings.EVENTS_QUEUE}", "--hostname", "control@%h"],
                                      env),
                          self._start([settings.WATCH_QUEUE, "--hostname", "watch@%h"], env)]
        eventually(lambda: self.log_path.read_text().count("ready.") >= self._ready_lines + len(self.processes)
              or any(p.poll() is not None for p in self.processes), "the Celery workers did not start", 60)
        assert all(p.poll() is None for p in self.processes), \
            f"a Celery worker exited:\n{self.log_path.read_text()[-3000:]}"

    @property
    def process(self) -> subprocess.Popen | None:
        """The deploy worker (the one with beat)."""
        return self.processes[0] if self.processes else None

    def _start(self, queues: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "panel", "worker", "--queues", *queues, "--concurrency", "4",
             "--loglevel", "info", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings",
                           "SWITCHYARD_TEST_GIT_PROTOCOLS": "file:http", **env},  # tests/support/settings.py says why
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def restart(self, **env: str) -> None:
        self.stop()
        self.start(**env)

    def stop(self) -> None:
        _stop(*self.processes)
        if self.processes:
            self._ready_lines = self.log_path.read_text().count("ready.")
        self.processes = []

@pytest.fixture(scope="session")
def celery_worker(django_db_setup, redis_server):
    """A real worker process on this run's queue, with the test settings (same database)."""
    worker = Worker()
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def panel_server(celery_worker):
    """The panel as `make run` serves it: gunicorn with uvicorn workers (HTTP and WebSockets)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port = free_port()
    log_path = DATA_DIR / "panel.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "panel.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
         "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    eventually(lambda: answers(port) or process.poll() is not None, "the panel did not start", 30)
    assert process.poll() is None, f"the panel exited:\n{log_path.read_text()[-3000:]}"
    yield f"http://127.0.0.1:{port}"
    _stop(process)


@pytest.fixture(scope="session", autouse=True)
def cleanup_session():
    """After the run: stop HAProxy, remove this run's containers, images and networks."""
    yield
    haproxy_process.stop(target.paths())
    _remove_docker_resources()
    try:
        egress.remove()  # the worker installed this run's rules (chains named after its instance)
    except egress.EgressError:
        pass  # no iptables here: then no worker could have started either


# A test on one of these runs against the real worker, HAProxy and Docker: seconds, not milliseconds.
REAL_STACK_FIXTURES = {"stack", "celery_worker", "panel_server"}
REAL_STACK_DIRECTORIES = {ROOT / "tests" / "stack", ROOT / "tests" / "faults", ROOT / "tests" / "multihost"}
# The fleet's tests (a rig of hosts: network namespaces, a dockerd each) run by `make multihost-test`.
MULTIHOST_DIRECTORY = ROOT / "tests" / "multihost"


def pytest_collection_modifyitems(config, items) -> None:
    """Every test on the real stack (by its directory or its fixtures) is `slow`, so
    `pytest -m "not slow"` is the edit loop (the pages, the API, the pure functions) and nobody
    has to remember to mark one. Tests elsewhere that start processes of their own say so."""
    for item in items:
        on_the_stack = item.path.parent in REAL_STACK_DIRECTORIES
        if on_the_stack or REAL_STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.path.parent == MULTIHOST_DIRECTORY:
            item.add_marker(pytest.mark.multihost)


def pytest_unconfigure(config) -> None:
    """Last of all, once every fixture (and the test database) is gone: the data dir."""
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def _remove_docker_resources() -> None:
    try:
        daemon.ping()
    except daemon.RuntimeFailure:
        return
    cleanup.remove_instance_resources()


@pytest.fixture
def stack(transactional_db, celery_worker):
    """The running Switchyard for one test; afterwards its deployments have ended and
    its containers, networks and images are gone."""
    daemon.ping()
    changes.sync_all()
    helper = Stack()
    yield helper
    helper.wait_until_idle()
    for container in containers.listed():
        containers.stop_and_remove(container.id, timeout=0)
    networks.remove_app_networks()
    # Its builds too: dockerd reads every image on the daemon for each listing and each build step's
    # cache lookup, so images kept until the session's end made every later test slower.
    cleanup.remove_instance_images()


@pytest.fixture
def handed_over(request, monkeypatch) -> list[tuple[str, tuple]] | None:
    """Work the web process hands to a worker (routing, app removal, certificates), as (task
    name, args): recorded instead of sent, so a worker left running by an earlier test does not
    act on this test's rows. Tests on the real stack are left alone: their worker must get it."""
    if "stack" in request.fixturenames:
        return None
    sent = []
    monkeypatch.setattr(enqueue, "_quietly", lambda name, args=(): sent.append((enqueue.task(name), args)))
    return sent


@pytest.fixture
def app_repo(tmp_path) -> AppRepo:
    return AppRepo(tmp_path / "repo")

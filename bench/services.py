"""Services a benchmark starts for itself (and stops): Redis and the panel."""
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not start within {timeout}s")


@contextmanager
def redis_server() -> Iterator[None]:
    port = redis.connection.parse_url(settings.REDIS_URL)["port"]
    process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(lambda: redis.Redis.from_url(settings.REDIS_URL).ping(), "redis-server")
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def serve_panel(port: int, workers: int = 2) -> Iterator[int]:
    """gunicorn with uvicorn workers, as the Procfile's `web` line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "panel.asgi:application", "-k", "uvicorn_worker.UvicornWorker",
         "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=os.environ.copy(), start_new_session=True)
    try:
        _wait(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close() or True, "the panel")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def celery_worker(log: Path, queue: str | None = None, concurrency: int = 2) -> Iterator[subprocess.Popen]:
    """A real worker on this installation's queue (or `queue`), with the same settings module."""
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "panel", "worker", "--queues", queue or settings.CELERY_TASK_DEFAULT_QUEUE,
         "--concurrency", str(concurrency), "--loglevel", "warning", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=os.environ.copy(), stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(3)  # the worker reconciles (starting HAProxy) as it comes up
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited:\n{log.read_text()[-2000:]}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def workers(directory: Path) -> Iterator[list[subprocess.Popen]]:
    """As the Procfile runs them: the deployments' worker (concurrency 4), the watch worker
    that carries a deployment on past verify (canary, watch, drain) and the control worker
    that applies routing changes (apps created and deleted)."""
    with celery_worker(directory / "worker.log", concurrency=4) as worker, \
            celery_worker(directory / "watch.log", settings.WATCH_QUEUE, concurrency=8) as watch, \
            celery_worker(directory / "control.log", settings.CONTROL_QUEUE) as control:
        yield [worker, watch, control]


@contextmanager
def installation(work: Path) -> Iterator[list[subprocess.Popen]]:
    """An isolated Switchyard: its database migrated, Redis, both workers and HAProxy. On the
    way out HAProxy is stopped and every container, network and volume it made removed."""
    from django.core.management import call_command

    from deployments.dockerd import cleanup
    from deployments.haproxy import process as haproxy_process
    from deployments.traffic import changes, target

    call_command("migrate", verbosity=0)
    try:
        with redis_server(), workers(work) as started:
            try:
                changes.sync_all()
                yield started
            finally:  # the worker started HAProxy when it came up: stop it whatever happened
                haproxy_process.stop(target.paths())
    finally:
        cleanup.remove_instance_resources()

"""Settings for the test suite: an isolated Switchyard on free ports.

Everything is set through the same environment variables as production, in os.environ,
so the Celery worker and CLI subprocesses the tests start see the same installation.
Its label (SWITCHYARD_INSTANCE) keeps a test run away from a running panel's containers.
"""
import os
import socket
import tempfile
import uuid
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The build lock of every installation on this machine's dockerd (the Makefile's `run` names it
# too): test runs of two checkouts side by side, the benchmark, the panel `make run` serves.
# Once it was in the checkout's var/: a test run of another checkout removed a cache layer a
# build had picked (`unable to find image "sha256:..."`).
MACHINE_BUILD_LOCK = Path("/run/lock/switchyard-build.lock")


def _shared_build_lock() -> Path:
    MACHINE_BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    return MACHINE_BUILD_LOCK


def _own_installation_per_process() -> None:
    """Under pytest-xdist each worker process is a test run of its own (its data dir, ports, Redis,
    Celery workers, HAProxy and instance label), as two runs side by side on one machine are. A
    worker inherits the values the controller set here, so it drops them and sets its own; the
    processes it starts inherit its values and keep them (same owner)."""
    owner = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if os.environ.get("SWITCHYARD_TEST_OWNER") == owner:
        return
    for name in os.environ.pop("SWITCHYARD_TEST_SET", "").split():
        os.environ.pop(name, None)
    os.environ["SWITCHYARD_TEST_OWNER"] = owner


def _default(name: str, value: str) -> str:
    """os.environ.setdefault that remembers what it set, for the processes xdist starts."""
    if name not in os.environ:
        os.environ[name] = value
        os.environ["SWITCHYARD_TEST_SET"] = f"{os.environ.get('SWITCHYARD_TEST_SET', '')} {name}"
    return os.environ[name]


_own_installation_per_process()
run_id = _default("SWITCHYARD_TEST_RUN", uuid.uuid4().hex[:8])
if "SWITCHYARD_DATA_DIR" not in os.environ:  # subprocesses inherit the parent's
    _default("SWITCHYARD_DATA_DIR", tempfile.mkdtemp(prefix=f"switchyard-test-{run_id}-"))
_default("SWITCHYARD_INSTANCE", f"test-{run_id}")
# One lock file for every installation on this machine's dockerd: dockerd/build_lock.py.
_default("SWITCHYARD_BUILD_LOCK_FILE", str(_shared_build_lock()))
_default("SWITCHYARD_DOCKER_NETWORK", f"sy-test-{run_id}")
_default("SWITCHYARD_QUEUE", f"test-{run_id}")
_default("SWITCHYARD_HTTP_BIND", f"127.0.0.1:{_free_port()}")
_default("SWITCHYARD_HTTPS_BIND", f"127.0.0.1:{_free_port()}")
# No ACME server but the one tests/stack/test_https.py starts (pebble); it restarts the worker with it.
_default("SWITCHYARD_ACME_DIRECTORY", "off")
# The fleet's tests (`make multihost-test` sets SWITCHYARD_TEST_BROKER_PASSWORD=1) need a broker whose
# default user has a password: hosts reach it over a network, and the panel adds no host to a broker
# anyone may enter as its administrator (fleet/credentials.py). tests/conftest.py starts it so.
_broker_login = f":{uuid.uuid4().hex}@" if os.environ.get("SWITCHYARD_TEST_BROKER_PASSWORD") == "1" else ""
_default("REDIS_URL", f"redis://{_broker_login}127.0.0.1:{_free_port()}/0")
_default("SWITCHYARD_DRAIN_TIMEOUT", "10")
# The p95 of a busybox CGI answering in a few ms swings by tens of ms on a loaded two-core test
# machine: a healthy canary was rolled back at 45 ms against 22 ms. The latency rule itself is
# tests/unit/test_canary_verdict.py's; no stack test relies on a latency verdict.
_default("SWITCHYARD_CANARY_LATENCY_FLOOR_MS", "250")
# Git may use no transport but local files here: a test (or the API fuzzer) that names an
# https:// or ssh:// repository gets git's refusal at once, and no traffic leaves the machine.
# The Celery workers also fetch over plain HTTP (tests/conftest.py sets
# SWITCHYARD_TEST_GIT_PROTOCOLS=file:http for them), from the local servers of the tests whose
# repository is served so (tests/stack/test_events.py): an app gets a repository only after the
# panel, in the test process, has read it, so a fuzzed URL never reaches them.
os.environ["GIT_ALLOW_PROTOCOL"] = os.environ.get("SWITCHYARD_TEST_GIT_PROTOCOLS", "file")
# Most tests are about other phases; the watch tests set a window on their apps.
_default("SWITCHYARD_DEFAULT_WATCH_WINDOW", "0")
# The periodic reconcile would act on the rows other tests stage; the fault-injection tests
# restart the worker with a short period (see tests/faults/test_faults.py).
_default("SWITCHYARD_RECONCILE_INTERVAL", "3600")
# Short waits where production's are long for no test's sake: every deploy waits for an HAProxy
# check to see the new server UP (every 1 s in production, on average half of that spent
# waiting), every rollback test for two checks to see it DOWN; a check still has 300 ms to answer
# on a loaded machine. A deployment beats every second, so the fault-injection tests (which
# restart the worker with a short heartbeat timeout) find a lost one in seconds.
_default("SWITCHYARD_HAPROXY_CHECK_INTERVAL_MS", "300")
_default("SWITCHYARD_HEARTBEAT_INTERVAL", "1")
# Deploy events go to receivers the tests run on loopback, retried after 1 s, 2 s, ...; e-mail
# is written to files (the worker is another process: an in-memory outbox would not be seen).
_default("SWITCHYARD_EVENTS_ALLOW_PRIVATE", "true")
_default("SWITCHYARD_EVENT_RETRY_SECONDS", "1")
_default("SWITCHYARD_EVENT_INTERVAL", "1")
_default("SWITCHYARD_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
# Commit statuses go to tests/support/receiver.py on this port (a stand-in for each provider's API).
_default("SWITCHYARD_TEST_PROVIDER_PORT", str(_free_port()))
_provider = f"http://127.0.0.1:{os.environ['SWITCHYARD_TEST_PROVIDER_PORT']}"
_default("SWITCHYARD_GITHUB_API_URL", f"{_provider}/github")
_default("SWITCHYARD_GITLAB_URL", f"{_provider}/gitlab")
_default("SWITCHYARD_GITEA_URL", f"{_provider}/gitea")
# The port of the registry image tests start (tests/support/docker_registry.py), one at a time.
_default("SWITCHYARD_TEST_REGISTRY_PORT", str(_free_port()))

from panel.settings import *  # noqa: E402,F401,F403

# The worker subprocess runs with these settings outside pytest: point it at the file
# pytest-django creates as the test database, so both sides see the same rows.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]  # noqa: F405

# The browser test serves the panel like `make run` does: collectstatic, then whitenoise.
STATIC_ROOT = DATA_DIR / "static"  # noqa: F405
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request while it is missing

# That registry is at a private address (loopback), refused for tenants unless the administrator
# lists and trusts it: here it is from the start, as is a listed private registry nobody trusts, so
# no image test restarts the workers to trust its registry.
TEST_REGISTRY = f"127.0.0.1:{os.environ['SWITCHYARD_TEST_REGISTRY_PORT']}"
UNTRUSTED_PRIVATE_REGISTRY = "10.0.0.1:5000"
SWITCHYARD["PULL_REGISTRIES"] = (*SWITCHYARD["PULL_REGISTRIES"], TEST_REGISTRY, UNTRUSTED_PRIVATE_REGISTRY)  # noqa: F405
SWITCHYARD["PRIVATE_REGISTRIES"] = (*SWITCHYARD["PRIVATE_REGISTRIES"], TEST_REGISTRY)  # noqa: F405

# A password hashed for a test user need not resist an attacker: Django's default hasher takes a
# few hundred milliseconds by design (seconds on a loaded 2-core machine), once per created user
# and per login. The password rules (AUTH_PASSWORD_VALIDATORS) are the production ones.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

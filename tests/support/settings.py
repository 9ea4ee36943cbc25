"""Settings for the test suite: an isolated Switchyard on free ports.

Everything is set through the same environment variables as production, in os.environ,
so the Celery worker and CLI subprocesses the tests start see the same installation.
Its label (SWITCHYARD_INSTANCE) keeps a test run away from a running panel's containers.
"""
import os
import socket
import tempfile
import uuid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


run_id = os.environ.setdefault("SWITCHYARD_TEST_RUN", uuid.uuid4().hex[:8])
if "SWITCHYARD_DATA_DIR" not in os.environ:  # subprocesses inherit the parent's
    os.environ["SWITCHYARD_DATA_DIR"] = tempfile.mkdtemp(prefix=f"switchyard-test-{run_id}-")
os.environ.setdefault("SWITCHYARD_INSTANCE", f"test-{run_id}")
os.environ.setdefault("SWITCHYARD_DOCKER_NETWORK", f"sy-test-{run_id}")
os.environ.setdefault("SWITCHYARD_QUEUE", f"test-{run_id}")
os.environ.setdefault("SWITCHYARD_HTTP_BIND", f"127.0.0.1:{_free_port()}")
os.environ.setdefault("SWITCHYARD_HTTPS_BIND", f"127.0.0.1:{_free_port()}")
# No ACME server but the one tests/stack/test_https.py starts (pebble); it restarts the worker with it.
os.environ.setdefault("SWITCHYARD_ACME_DIRECTORY", "off")
os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:{_free_port()}/0")
os.environ.setdefault("SWITCHYARD_DRAIN_TIMEOUT", "10")
# Git may use no transport but local files here: a test (or the API fuzzer) that names an
# https:// or ssh:// repository gets git's refusal at once, and no traffic leaves the machine.
os.environ["GIT_ALLOW_PROTOCOL"] = "file"
# Most tests are about other phases; the watch tests set a window on their apps.
os.environ.setdefault("SWITCHYARD_DEFAULT_WATCH_WINDOW", "0")
# The periodic reconcile would act on the rows other tests stage; the fault-injection tests
# restart the worker with a short period (see tests/faults/test_faults.py).
os.environ.setdefault("SWITCHYARD_RECONCILE_INTERVAL", "3600")
# Short waits where production's are long for no test's sake: every deploy waits for an HAProxy
# check to see the new server UP (every 1 s in production, on average half of that spent
# waiting), every rollback test for two checks to see it DOWN; a check still has 300 ms to answer
# on a loaded machine. A deployment beats every second, so the fault-injection tests (which
# restart the worker with a short heartbeat timeout) find a lost one in seconds.
os.environ.setdefault("SWITCHYARD_HAPROXY_CHECK_INTERVAL_MS", "300")
os.environ.setdefault("SWITCHYARD_HEARTBEAT_INTERVAL", "1")
# Deploy events go to receivers the tests run on loopback, retried after 1 s, 2 s, ...; e-mail
# is written to files (the worker is another process: an in-memory outbox would not be seen).
os.environ.setdefault("SWITCHYARD_EVENTS_ALLOW_PRIVATE", "true")
os.environ.setdefault("SWITCHYARD_EVENT_RETRY_SECONDS", "1")
os.environ.setdefault("SWITCHYARD_EVENT_INTERVAL", "1")
os.environ.setdefault("SWITCHYARD_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
# Commit statuses go to tests/support/receiver.py on this port (a stand-in for each provider's API).
os.environ.setdefault("SWITCHYARD_TEST_PROVIDER_PORT", str(_free_port()))
_provider = f"http://127.0.0.1:{os.environ['SWITCHYARD_TEST_PROVIDER_PORT']}"
os.environ.setdefault("SWITCHYARD_GITHUB_API_URL", f"{_provider}/github")
os.environ.setdefault("SWITCHYARD_GITLAB_URL", f"{_provider}/gitlab")
os.environ.setdefault("SWITCHYARD_GITEA_URL", f"{_provider}/gitea")

from panel.settings import *  # noqa: E402,F401,F403

# The worker subprocess runs with these settings outside pytest: point it at the file
# pytest-django creates as the test database, so both sides see the same rows.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]  # noqa: F405

# The browser test serves the panel like `make run` does: collectstatic, then whitenoise.
STATIC_ROOT = DATA_DIR / "static"  # noqa: F405
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request while it is missing

# A password hashed for a test user need not resist an attacker: Django's default hasher takes a
# few hundred milliseconds by design (seconds on a loaded 2-core machine), once per created user
# and per login. The password rules (AUTH_PASSWORD_VALIDATORS) are the production ones.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

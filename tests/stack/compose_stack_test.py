"""`make stack-test`: the production stack (compose/docker-compose.yml) started for real on this
machine, used as a person would use it, and torn down.

Every image is built from the local Debian base (scripts/base-image.sh); nothing is pulled. The
stack gets ports, names and an instance label of its own, so it runs beside anything else.
Pebble (Debian's ACME test server) issues the certificates, validating HTTP-01 through the
stack's HAProxy. A person's steps: log in to the panel, make an API token, create an app with a
domain, deploy it, deploy two more releases under load (0 failed requests, over HTTP and
HTTPS), then reach the panel itself on its own HTTPS domain: its static files, the live
deployment log and the live container output (through the docker-logs proxy) over WebSockets.

Not collected by `make test` (the name does not start with test_): it builds images for several
minutes on a fresh machine. Run it with `make stack-test`.
"""
import asyncio
import hashlib
import http.client
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import threading
import urllib.parse
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import websockets

from tests.support import tls as test_tls
from tests.support.apprepo import AppRepo
from tests.support.load import Load
from tests.support.pebble import Pebble
from tests.support.processes import free_port
from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"
APP_DOMAIN = "shop.stack.test"
PANEL_DOMAIN = "panel.stack.test"
PRINT_BUILD_CGROUP = 'RUN ["/bin/busybox", "grep", ":pids:", "/proc/self/cgroup"]\n'
# Each worker service and the name it takes in Celery (`--hostname NAME@%h` in the compose file).
WORKER_SERVICES = {"worker": "deploy", "watch": "watch", "control": "control", "events": "events"}
STARTED_WITHIN = 600  # seconds; building the images is most of it on a fresh machine (4-5 min here)

# pytest.ini's 300 s per test is for the suite. On a fresh machine this test builds the stack's
# images itself and took 273 s here, most of it building: it gets room of its own.
pytestmark = pytest.mark.timeout(900)


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin is installed, else Debian's docker-compose (v1)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (scripts/install.sh installs it)")


class Stack:
    """The compose project, its environment and the panel's address."""

    def __init__(self, directory: Path, pebble: Pebble) -> None:
        self.name = f"systack{secrets.token_hex(3)}"
        self.http_port = pebble.http_port  # where pebble validates HTTP-01
        self.https_port, self.panel_port = free_port(), free_port()
        config = directory / "config"
        config.mkdir()
        shutil.copy(pebble.ca_bundle, config / "acme-ca.pem")
        self.env = {
            **os.environ,
            "SWITCHYARD_SECRET_KEY": secrets.token_urlsafe(40),
            "POSTGRES_PASSWORD": secrets.token_hex(12),
            "SWITCHYARD_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "SWITCHYARD_HTTPS_BIND": f"127.0.0.1:{self.https_port}",
            "SWITCHYARD_PANEL_PORT": str(self.panel_port),
            "SWITCHYARD_REDIS_PORT": str(free_port()),
            "SWITCHYARD_POSTGRES_PORT": str(free_port()),
            "SWITCHYARD_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SWITCHYARD_PANEL_DOMAIN": PANEL_DOMAIN,
            "SWITCHYARD_INSTANCE": self.name,
            "SWITCHYARD_QUEUE": self.name,
            "SWITCHYARD_DOCKER_NETWORK": self.name,
            "SWITCHYARD_ACME_DIRECTORY": pebble.directory_url,
            "SWITCHYARD_ACME_CA_BUNDLE": "/etc/switchyard/acme-ca.pem",
            "SWITCHYARD_CONFIG_DIR": str(config),
            "SWITCHYARD_CERTIFICATE_INTERVAL": "2",
            # Images of their own (kept as build cache): a real stack's on this host stay as they are.
            "SWITCHYARD_IMAGE": "switchyard-stacktest:local",
            "SWITCHYARD_REDIS_IMAGE": "switchyard-stacktest-redis:local",
            "SWITCHYARD_POSTGRES_IMAGE": "switchyard-stacktest-postgres:local",
        }

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), "-p", self.name, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=check)

    def up(self) -> None:
        try:
            self.compose("up", "-d", "--build", timeout=STARTED_WITHIN)
        except subprocess.CalledProcessError as error:
            pytest.fail(f"the stack did not start:\n{error.stdout[-3000:]}\n{error.stderr[-3000:]}")
        wait_for(lambda: _status(f"http://127.0.0.1:{self.panel_port}/login/") == 200, "the panel answers", 60)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def admin_password(self) -> str:
        """From the file ensure_admin wrote on the data volume; never in the migrate service's log."""
        password = self.compose("exec", "-T", "worker", "cat", "/data/admin-password").stdout.strip()
        assert password and password not in self.compose("logs", "--no-color", "migrate").stdout
        return password

    def down(self) -> None:
        """The project's containers, networks and volumes, the apps' containers, networks and
        images the worker made (they carry the stack's instance label), and the egress table its
        workers put on the host (engine/egress.py: named after the instance)."""
        self.compose("down", "--volumes", "--remove-orphans", timeout=180, check=False)
        label = f"label=switchyard.instance={self.name}"
        for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                              ("image", ["images", "-q"])):
            ids = subprocess.run(["docker", *listing, "--filter", label], capture_output=True, text=True).stdout.split()
            if ids:
                removal = ["rm", "-f"] if kind == "container" else ["rmi", "-f"] if kind == "image" else ["network", "rm"]
                subprocess.run(["docker", *removal, *ids], capture_output=True)
        table = f"switchyard_{hashlib.sha1(self.name.encode()).hexdigest()[:8]}"
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, timeout=20)


def wait_for(condition, what: str, timeout: float):
    """As the suite's, asking less often: each question is an HTTP request to the stack."""
    return eventually(condition, what, timeout, interval=0.5)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


class GitServer:
    """The app's repository over git's "dumb" HTTP protocol. Both the web service (which checks
    the branch exists, from the Compose network) and the worker (which clones, from the host's
    network) must reach it, so it listens on the address of Docker's default bridge on the host."""

    def __init__(self, repo: AppRepo) -> None:
        self.repo = repo
        handler = partial(_QuietHandler, directory=str(repo.path / ".git"))
        self.server = ThreadingHTTPServer((_docker_host_address(), 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def commit_version(self, version: str, extra_dockerfile: str = "") -> None:
        self.repo.commit_version(version, extra_dockerfile=extra_dockerfile)
        self.repo._git("update-server-info")  # what the dumb protocol reads

    def __enter__(self) -> "GitServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _docker_host_address() -> str:
    """The host's address on Docker's default bridge. Docker leaves the gateway out of the
    network's IPAM config when its bridge interface already existed at the daemon's start (seen
    on a fresh machine): then it is the interface's own address."""
    inspected = subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                                '{{(index .IPAM.Config 0).Gateway}} {{index .Options "com.docker.network.bridge.name"}}'],
                               capture_output=True, text=True, check=True)
    gateway, _, interface = inspected.stdout.strip().rpartition(" ")
    if gateway.strip():
        return gateway.strip()
    addresses = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", interface or "docker0"],
                               capture_output=True, text=True, check=True).stdout
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", addresses)
    assert found, f"no IPv4 address on Docker's bridge {interface!r}: {addresses!r}"
    return found.group(1)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Panel:
    """A person at the panel: a session from the login form, then an API token made on its page."""

    def __init__(self, base: str, context: ssl.SSLContext | None = None) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.cookies)]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)
        self.token = ""

    def log_in(self, username: str, password: str) -> None:
        page = self._form("/login/", {"username": username, "password": password})
        assert "Log out" in page or "logout" in page, "the login did not take"

    def make_token(self) -> None:
        page = self._form("/tokens/", {"name": "stack-test"})
        self.token = re.search(r'id="new-token".*?<code[^>]*>([^<]+)</code>', page, re.S).group(1).strip()

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with self.opener.open(request, timeout=30) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode()[:2000]}") from None

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.base + path, timeout=30) as answer:
            return answer.status, answer.read().decode()

    def _form(self, path: str, fields: dict) -> str:
        page = self.get(path)[1]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=30) as answer:
            return answer.read().decode()

    def session_cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)


def deploy_and_wait(panel: Panel, app: str, timeout: float = 180) -> dict:
    deployment = panel.api("POST", f"/api/apps/{app}/deploy")
    return wait_for(lambda: _final(panel.api("GET", f"/api/deployments/{deployment['id']}")),
                    f"deployment #{deployment['id']} ends", timeout)


def _final(deployment: dict) -> dict | None:
    return deployment if deployment["state"] in ("succeeded", "failed", "cancelled", "rolled_back") else None


@pytest.fixture
def pebble_server(tmp_path):
    """Started first: it makes the CA file the stack's workers trust. It validates HTTP-01 on the
    port chosen here, which becomes the stack's HTTP port."""
    pebble = Pebble(tmp_path / "pebble", http_port=free_port())
    pebble.start()
    yield pebble
    pebble.stop()


@pytest.fixture
def stack(tmp_path, pebble_server):
    stack = Stack(tmp_path, pebble_server)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def test_the_compose_stack_deploys_with_zero_downtime_and_serves_https(stack, pebble_server, tmp_path):
    _check_what_runs_where(stack)
    trusted = test_tls.trusting(pebble_server.root_pem())
    panel = Panel(f"http://127.0.0.1:{stack.panel_port}")
    panel.log_in("admin", stack.admin_password())
    panel.make_token()

    with GitServer(AppRepo(tmp_path / "repo")) as git:
        git.commit_version("v1", extra_dockerfile=PRINT_BUILD_CGROUP)
        panel.api("POST", "/api/apps", {"name": "shop", "repo_url": git.url, "domains": [APP_DOMAIN]})
        first = deploy_and_wait(panel, "shop")
        assert first["state"] == "succeeded", first["error"]
        _check_the_build_had_a_process_limit(panel, first["id"])
        certificate = wait_for(lambda: (c := panel.api("GET", "/api/apps/shop/certificate"))["status"] == "valid" and c,
                               "the app's certificate is issued", 90)
        assert certificate["domains"] == [APP_DOMAIN] and "Pebble" in certificate["issuer"]
        wait_for(lambda: _https_answer(stack.https_port, APP_DOMAIN, trusted) == (200, "v1"), "HTTPS serves v1", 30)

        with Load(stack.http_port, "shop.localhost", threads=2, max_seconds=240) as plain, \
                Load(stack.https_port, APP_DOMAIN, threads=2, max_seconds=240, tls=trusted) as secure:
            for version in ("v2", "v3"):
                git.commit_version(version)
                deployment = deploy_and_wait(panel, "shop")
                assert deployment["state"] == "succeeded", deployment["error"]
            plain.wait_for(plain.result.total + 50)
        for load in (plain, secure):
            assert load.result.total > 200 and load.result.failed == [], load.result.failed[:5]
            assert set(load.result.bodies()) <= {"v1", "v2", "v3"} and load.result.answers[-1].body == "v3"

    _check_the_panel_on_its_domain(stack, panel, trusted, deployment["id"])


def _check_the_build_had_a_process_limit(panel: Panel, deployment_id: int) -> None:
    """The worker service makes each build's parent cgroup (pids.max) in the host's cgroupfs,
    mounted read-write into it: the RUN step ran under it, and the log has no "no process limit"."""
    lines = [line["text"] for line in panel.api("GET", f"/api/deployments/{deployment_id}/logs")]
    assert any(":pids:/switchyard-build-" in line for line in lines), [l for l in lines if ":pids:" in l]
    assert not [line for line in lines if "no process limit" in line]


def _check_what_runs_where(stack: Stack) -> None:
    """The panel has neither the Docker socket nor HAProxy's files; HAProxy runs in its own
    service, not in a worker's container (where it would die with the worker)."""
    mounts = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Mounts}}", stack.container("web")],
                                       capture_output=True, text=True, check=True).stdout)
    assert {m["Destination"] for m in mounts} == {"/run/switchyard-stats"}, mounts
    # The panel answering does not mean HAProxy is up: `manage.py haproxy` renders and checks the
    # config first (seen once: the check ran while only manage.py was there).
    wait_for(lambda: _runs_haproxy(stack, "haproxy"), "HAProxy runs in the haproxy service", 60)
    for service in WORKER_SERVICES:
        assert not _runs_haproxy(stack, service), service
    # A worker that cannot start (its egress check refused, say) restarts over and over: a deploy
    # handed to its queue would wait until its heartbeat went stale. Each one must answer.
    for service in WORKER_SERVICES:
        wait_for(lambda: _celery_answers(stack, service), f"the {service} worker answers a ping", 60)


def _celery_answers(stack: Stack, service: str) -> bool:
    node = WORKER_SERVICES[service]
    ping = stack.compose("exec", "-T", service, "sh", "-c", f"celery -A panel inspect ping --timeout 3 -d {node}@$(hostname)",
                         check=False, timeout=60)
    return ping.returncode == 0 and "pong" in ping.stdout


def _runs_haproxy(stack: Stack, service: str) -> bool:
    processes = subprocess.run(["docker", "top", stack.container(service)], capture_output=True, text=True,
                               check=True).stdout
    return bool(re.search(r"haproxy -W -D -f /data/haproxy/haproxy.cfg", processes))


def _https_answer(port: int, host: str, context: ssl.SSLContext) -> tuple[int, str] | None:
    try:
        return test_tls.get(port, host, context)[:2]
    except (OSError, http.client.HTTPException):
        return None


def _check_the_panel_on_its_domain(stack: Stack, panel: Panel, trusted: ssl.SSLContext, deployment_id: int) -> None:
    """The panel through the apps' HAProxy on SWITCHYARD_PANEL_DOMAIN, with its own certificate:
    pages, static files and both WebSockets, as under `make run`."""
    wait_for(lambda: _https_answer(stack.https_port, PANEL_DOMAIN, trusted), "the panel's certificate is served", 90)
    base = f"https://{PANEL_DOMAIN}:{stack.https_port}"
    status, page = test_tls.get(stack.https_port, PANEL_DOMAIN, trusted, "/login/")[:2]
    assert status == 200 and 'name="password"' in page
    assert test_tls.get(stack.https_port, PANEL_DOMAIN, trusted, "/static/switchyard/panel.css")[0] == 200
    log = asyncio.run(_socket_messages(stack.https_port, trusted, f"/ws/deployments/{deployment_id}/", base, panel,
                                       until=lambda m: m.get("type") == "state" and m.get("final")))
    assert any(line["text"].startswith("Deploying shop") for m in log if m["type"] == "lines" for line in m["lines"])
    output = asyncio.run(_socket_messages(stack.https_port, trusted, "/ws/apps/shop/output/", base, panel,
                                          until=lambda m: any("serving v3" in line for line in m.get("lines", []))))
    assert any("serving v3" in line for m in output for line in m["lines"]), output


async def _socket_messages(port: int, context: ssl.SSLContext, path: str, origin: str, panel: Panel, until) -> list[dict]:
    """Messages of one panel WebSocket (through HAProxy, TLS to the panel's domain) until one matches."""
    messages = []
    async with websockets.connect(f"wss://{PANEL_DOMAIN}:{port}{path}", ssl=context, host="127.0.0.1", port=port,
                                  origin=origin, additional_headers={"Cookie": panel.session_cookie()},
                                  open_timeout=10) as socket:
        async with asyncio.timeout(30):
            while True:
                messages.append(json.loads(await socket.recv()))
                if until(messages[-1]):
                    return messages

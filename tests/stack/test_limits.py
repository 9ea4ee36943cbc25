"""Ceilings are the administrator's, not the tenant's; nothing of an app is published on the host;
memory and disk stay bounded (source archive, stored log, live output, log retention).

Every attack here is made as a tenant would: a non-superuser with an app of their own and an API
token (or the panel's settings form), against the real worker and Docker where it is about what runs.
"""
import os
import re
import socketserver
import subprocess
import threading
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.forms.models import model_to_dict
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from deployments import quotas, tasks
from deployments.application import apps
from deployments.application.app_settings import SETTINGS_FIELDS, AppSpec
from deployments.application.errors import InvalidInput
from deployments.engine import logs, priority
from deployments.git import source
from deployments.dockerd import build_cgroup, builds, containers, daemon, live_output
from deployments.dockerd.values import LABEL_APP
from deployments.models import ApiToken, App, Deployment, LogLine, Quota
from tests.support.apprepo import AppRepo
from tests.support.eventually import eventually
from tests.support.processes import free_port
from tests.support.stack import TEST_ACTOR

MIB = 1024 * 1024
CGROUPS = Path("/sys/fs/cgroup")


class _Collect:
    """While in its block, polls `read()` in a thread and keeps the union of what it returned."""

    def __init__(self, read) -> None:
        self.read, self.found, self.done = read, set(), threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.done.wait(0.1):
            try:
                self.found |= self.read()
            except OSError:
                pass  # removed between the glob and the read

    def __enter__(self) -> set:
        self.thread.start()
        return self.found

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(5)


def _tenant(name: str = "tenant"):
    return get_user_model().objects.create_user(name, password="a long enough password 1")


def _api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user, 't')[1]}")


def _patch(client: Client, app: str, body: dict):
    return client.patch(f"/api/apps/{app}", body, content_type="application/json")


def _own_app(repo: AppRepo, owner, name: str, **fields) -> App:
    """As a superuser (or the CLI) creates an app for a user: the repository is on this machine."""
    return apps.create_app(AppSpec.of(name=name, repo_url=repo.url, **fields), actor=TEST_ACTOR, owner=owner)


def _with(**values):
    return override_settings(SWITCHYARD={**settings.SWITCHYARD, **values})


def _log(deployment: Deployment) -> list[str]:
    return list(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))


# Ceilings ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_tenant_cannot_set_limits_above_the_ceilings_and_a_superusers_quota_grants_more(app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = _tenant()
    app = _own_app(app_repo, tenant, "mine")
    api = _api(tenant)

    for field, value, setting in [("memory_limit_mb", 65536, "SWITCHYARD_MAX_APP_MEMORY_MB"),
                                  ("cpu_limit", 64, "SWITCHYARD_MAX_APP_CPUS"),
                                  ("pids_limit", 32768, "SWITCHYARD_MAX_APP_PIDS")]:
        response = _patch(api, "mine", {field: value})
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["detail"] and setting in response.json()["detail"]
    with _with(MAX_APP_CONTAINERS=4):
        response = _patch(api, "mine", {"replicas": 5})
        assert response.status_code == 400 and "SWITCHYARD_MAX_APP_CONTAINERS" in response.json()["detail"]
    # A Compose file's containers count too (it is read when the setting changes, and at deploy).
    (app_repo.path / "compose.yaml").write_text(
        "services:\n" + "".join(f"  {name}: {{build: ., deploy: {{replicas: 8}}}}\n" for name in ("web", "a", "b")))
    app_repo._commit("24 containers")
    response = _patch(api, "mine", {"compose_file": "compose.yaml"})
    assert response.status_code == 400 and "the release has 24 containers" in response.json()["detail"]
    assert "SWITCHYARD_MAX_APP_CONTAINERS" in response.json()["detail"]
    app.refresh_from_db()
    assert (app.memory_limit_mb, app.cpu_limit, app.pids_limit, app.replicas) == (512, 1.0, 256, 1)
    assert app.compose_file == ""

    # Per user: memory of all their containers, containers, apps.
    with _with(USER_MAX_MEMORY_MB=1024):
        response = _patch(api, "mine", {"replicas": 3})
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_MEMORY_MB" in response.json()["detail"]
    with _with(USER_MAX_CONTAINERS=2):
        response = _patch(api, "mine", {"replicas": 3})
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_CONTAINERS" in response.json()["detail"]
    with _with(USER_MAX_APPS=1):
        response = api.post("/api/apps", {"name": "second", "repo_url": "https://git.example.com/second.git"},
                            content_type="application/json")
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_APPS" in response.json()["detail"]
    assert not App.objects.filter(name="second").exists()

    _a_quota_grants_more(api, tenant, {"app_memory_mb": 4096, "app_cpus": 4},
                         within={"memory_limit_mb": 4096, "cpu_limit": 4}, above={"memory_limit_mb": 4097})


def _a_quota_grants_more(api: Client, tenant, quota: dict, within: dict, above: dict) -> None:
    """A superuser grants more with the user's quota row (Django admin): `within` is accepted,
    `above` is not. Once the row is gone, a value over a ceiling is kept while other settings change."""
    Quota.objects.create(user=tenant, **quota)
    response = _patch(api, "mine", within)
    assert response.status_code == 200, response.content
    assert _patch(api, "mine", above).status_code == 400
    Quota.objects.filter(user=tenant).delete()
    assert _patch(api, "mine", {"health_path": "/healthz"}).status_code == 200


@pytest.mark.django_db
def test_a_tenant_cannot_watch_or_canary_longer_than_the_ceilings_and_a_superusers_quota_grants_more(
        app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = _tenant()
    app = _own_app(app_repo, tenant, "mine")
    api = _api(tenant)

    # The defaults (3600 s each): four hour-long canary steps were accepted before the ceiling.
    response = _patch(api, "mine", {"canary_steps": [5, 25, 50, 100], "canary_step_seconds": 3600})
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "canary_step_seconds" in detail and "the canary would run 10800 s (3 steps below 100 % × 3600 s)" in detail
    assert "above the most allowed, 3600 s (SWITCHYARD_MAX_APP_CANARY_SECONDS)" in detail
    with _with(MAX_APP_WATCH_SECONDS=600, MAX_APP_CANARY_SECONDS=600):
        response = _patch(api, "mine", {"watch_window": 601})
        assert response.status_code == 400, response.content
        assert "watch_window" in response.json()["detail"]
        assert "601 s is above the most allowed, 600 s (SWITCHYARD_MAX_APP_WATCH_SECONDS)" in response.json()["detail"]
        response = _patch(api, "mine", {"canary_steps": [10, 50, 100], "canary_step_seconds": 301})
        assert response.status_code == 400 and "SWITCHYARD_MAX_APP_CANARY_SECONDS" in response.json()["detail"]
        assert _patch(api, "mine", {"watch_window": 600, "canary_steps": [10, 50, 100],
                                    "canary_step_seconds": 300}).status_code == 200

        _a_quota_grants_more(api, tenant, {"app_watch_seconds": 1200, "app_canary_seconds": 1200},
                             within={"watch_window": 1200, "canary_step_seconds": 600}, above={"watch_window": 1201})
        # The next deploy says what to lower.
        app.refresh_from_db()
        assert "SWITCHYARD_MAX_APP_WATCH_SECONDS" in quotas.release_problem(app, 1)
        App.objects.filter(pk=app.pk).update(watch_window=600)
        app.refresh_from_db()
        assert "SWITCHYARD_MAX_APP_CANARY_SECONDS" in quotas.release_problem(app, 1)
    app.refresh_from_db()
    assert (app.watch_window, app.canary_steps, app.canary_step_seconds) == (600, [10, 50, 100], 600)


@pytest.mark.django_db
def test_the_panels_settings_form_names_the_ceiling(app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = _tenant()
    app = _own_app(app_repo, tenant, "mine")
    client = Client()
    client.force_login(tenant)
    form = {name: value for name, value in model_to_dict(app, fields=SETTINGS_FIELDS).items()
            if value is not False}
    form.update(canary_steps="", domains="", memory_limit_mb=65536, https_redirect="on")

    response = client.post(f"/apps/{app.name}/settings", form)

    assert response.status_code == 400
    assert "above the most allowed, 2048 MiB (SWITCHYARD_MAX_APP_MEMORY_MB)" in response.content.decode()
    app.refresh_from_db()
    assert app.memory_limit_mb == 512


def test_a_release_runs_with_its_limits_its_build_with_the_build_limits_and_a_ceiling_holds_at_deploy(
        stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile=(
        'RUN ["/bin/busybox", "sh", "-c", "echo build-cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) '
        '$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); '
        'echo build-memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); '
        '/bin/busybox grep :pids: /proc/self/cgroup; /bin/busybox sleep 2"]\n'))
    tenant = _tenant()
    app = _own_app(app_repo, tenant, "limited")
    api = _api(tenant)
    assert _patch(api, "limited", {"memory_limit_mb": 96, "cpu_limit": 0.5, "pids_limit": 64}).status_code == 200
    assert _patch(api, "limited", {"memory_limit_mb": 65536, "cpu_limit": 64}).status_code == 400

    build_cgroups = f"pids/switchyard-build-{settings.SWITCHYARD['INSTANCE']}-*"
    # Read while a build step runs in it (a container's cgroup inside): the directory is made a
    # moment before its pids.max is written, with nothing running in it meanwhile.
    with _Collect(lambda: {(parent / "pids.max").read_text().strip() for parent in CGROUPS.glob(build_cgroups)
                           if any(child.is_dir() for child in parent.iterdir())}) as pids_max:
        response = api.post("/api/apps/limited/deploy", {}, content_type="application/json")
        assert response.status_code == 202, response.content
        first = stack.wait(Deployment.objects.get(pk=response.json()["id"]), timeout=180)

    assert first.state == Deployment.State.SUCCEEDED, first.error
    host_config = daemon.client().api.inspect_container(first.containers[0].id)["HostConfig"]
    assert (host_config["Memory"], host_config["NanoCpus"], host_config["PidsLimit"]) == (96 * MIB, 500_000_000, 64)
    assert not host_config["PortBindings"] and not host_config["PublishAllPorts"]
    lines = _log(first)
    cpus = int(settings.SWITCHYARD["BUILD_CPUS"] * 100_000)
    assert f"build-cpu {cpus} 100000" in lines, [line for line in lines if "build-" in line]
    assert f"build-memory {settings.SWITCHYARD['BUILD_MEMORY_MB'] * MIB}" in lines
    # Processes: the RUN step ran under a parent cgroup of its own whose pids.max is the build's limit.
    assert any(f":pids:/switchyard-build-{settings.SWITCHYARD['INSTANCE']}-" in line for line in lines)
    assert pids_max == {str(settings.SWITCHYARD["BUILD_PIDS"])}
    assert not list(CGROUPS.glob(build_cgroups))  # removed after the build

    # The administrator's ceiling holds at deploy too (here: a value written around the services,
    # as one lowered since would be): the deployment fails before it builds, the release serves on.
    App.objects.filter(pk=app.pk).update(memory_limit_mb=4096)
    second = stack.deploy_and_wait(app)
    assert second.state == Deployment.State.FAILED and second.phase == "fetch"
    assert "above the most allowed, 2048 MiB (SWITCHYARD_MAX_APP_MEMORY_MB)" in second.error
    assert stack.get("limited.localhost") == (200, "v1")


# Build cgroups under either cgroup driver ---------------------------------------------------

def test_the_build_parent_takes_the_form_dockers_cgroup_driver_wants_on_this_machine():
    """Docker's own answer decides; a parent of that form is made, with the process limit, and
    removed (a real build runs under it: the test above)."""
    driver = subprocess.run(["docker", "info", "--format", "{{.CgroupDriver}}"], capture_output=True, text=True,
                            check=True, timeout=30).stdout.strip()
    assert daemon.cgroup_driver() == driver
    if driver == "systemd":
        with build_cgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], 77, driver) as parent:
            assert parent.problem or re.fullmatch(r"switchyard-build-[\w]+_\d+_[0-9a-f]{12}\.slice", parent.path)
        return
    with build_cgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], 77, driver) as parent:
        assert not parent.problem and parent.path == f"/{parent.name}"
        assert parent.name.startswith(f"switchyard-build-{settings.SWITCHYARD['INSTANCE']}-{os.getpid()}-")
        assert next(CGROUPS.glob(f"*/{parent.name}/pids.max")).read_text().strip() == "77"
    assert not list(CGROUPS.glob(f"*/{parent.name}"))


class _Systemd:
    """busctl and systemctl as a systemd would answer them; records each call."""

    def __init__(self, refuse: str = "", slices: tuple[str, ...] = ()) -> None:
        self.calls: list[list[str]] = []
        self.refuse, self.slices = refuse, slices

    def __call__(self, args: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(args)
        if args[0] == "systemctl":
            return subprocess.CompletedProcess(args, 0, "".join(f"{n} loaded active active x\n" for n in self.slices), "")
        if self.refuse and "StartTransientUnit" in args:
            return subprocess.CompletedProcess(args, 1, "", self.refuse)
        return subprocess.CompletedProcess(args, 0, 'o "/org/freedesktop/systemd1/job/1"', "")


def test_under_the_systemd_driver_a_build_parent_is_a_transient_slice_with_the_process_limit():
    systemd = _Systemd()
    with build_cgroup.BuildCgroup("test-a1b2", 77, "systemd", run=systemd) as parent:
        # A slice name, never a path (dockerd refuses a path under the systemd driver: the build fails).
        assert re.fullmatch(rf"switchyard-build-test_a1b2_{os.getpid()}_[0-9a-f]{{12}}\.slice", parent.path)
        start = systemd.calls[0]
        assert start[:2] == ["busctl", "call"] and "StartTransientUnit" in start and parent.path in start
        assert start[start.index("TasksMax"):start.index("TasksMax") + 3] == ["TasksMax", "t", "77"]
    assert systemd.calls[-1][-4:] == ["StopUnit", "ss", parent.path, "replace"]  # stopped: the slice is gone

    # systemd refuses (no bus in a worker's container): no parent, the reason; the build still runs.
    with build_cgroup.BuildCgroup("test-a1b2", 77, "systemd", run=_Systemd(refuse="Access denied")) as parent:
        assert parent.path == "" and "Access denied" in parent.problem

    # At worker start: this instance's slices whose worker process is gone, and only those.
    dead = _dead_pid()
    mine_dead = f"switchyard-build-test_a1b2_{dead}_{'a' * 12}.slice"
    mine_alive = f"switchyard-build-test_a1b2_{os.getpid()}_{'b' * 12}.slice"
    other_instance = f"switchyard-build-test_a1b2_x_{dead}_{'c' * 12}.slice"
    systemd = _Systemd(slices=(mine_dead, mine_alive, other_instance))
    assert build_cgroup.sweep("test-a1b2", "systemd", run=systemd) == [mine_dead]
    assert [call[-2] for call in systemd.calls if "StopUnit" in call] == [mine_dead]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_build_cgroups_a_killed_worker_left_are_removed_when_a_worker_starts(celery_worker):
    if daemon.cgroup_driver() != "cgroupfs":
        pytest.skip("this machine's Docker uses the systemd driver: the slices are swept by systemd's calls")
    instance = settings.SWITCHYARD["INSTANCE"]
    dead, nonce = _dead_pid(), "d" * 12
    # As a worker killed mid-build leaves it: the parent in the pids hierarchy and, where runc
    # made them, in the others, one with a RUN step's cgroup still below it.
    left = f"switchyard-build-{instance}-{dead}-{nonce}"
    running = f"switchyard-build-{instance}-{os.getpid()}-{nonce}"  # a build that runs: its process lives
    other = f"switchyard-build-{instance}x-{dead}-{nonce}"  # another installation's
    made = [CGROUPS / "pids" / left / "0123456789ab", CGROUPS / "memory" / left, CGROUPS / "pids" / running,
            CGROUPS / "pids" / other]
    for directory in made:
        directory.mkdir(parents=True)
    try:
        celery_worker.restart()

        eventually(lambda: not list(CGROUPS.glob(f"*/{left}")), "the left parent is removed", timeout=30)
        assert (CGROUPS / "pids" / running).is_dir() and (CGROUPS / "pids" / other).is_dir()
        assert f"build cgroups a killed worker left removed: {left}" in celery_worker.log_path.read_text()
    finally:
        for directory in sorted(made, key=lambda d: -len(d.parts)):
            if directory.is_dir():
                directory.rmdir()


# Totals count what runs, and hold at once -------------------------------------------------------

def _deploy(api: Client, name: str) -> Deployment:
    response = api.post(f"/api/apps/{name}/deploy", {}, content_type="application/json")
    assert response.status_code == 202, response.content
    return Deployment.objects.get(pk=response.json()["id"])


def test_a_limit_lowered_without_a_redeploy_frees_no_memory_for_the_owners_other_apps(stack, app_repo):
    app_repo.commit_version("v1")
    tenant = _tenant()
    Quota.objects.create(user=tenant, memory_mb=768)
    _own_app(app_repo, tenant, "big-one")  # 512 MiB, the default
    api = _api(tenant)
    live = stack.wait(_deploy(api, "big-one"), timeout=180)
    assert live.state == Deployment.State.SUCCEEDED, live.error
    assert (live.memory_limit_mb, live.container_count) == (512, 1)

    # Lowered, not redeployed: the running container keeps its 512 MiB.
    assert _patch(api, "big-one", {"memory_limit_mb": 64}).status_code == 200
    assert daemon.client().api.inspect_container(live.containers[0].id)["HostConfig"]["Memory"] == 512 * MIB

    # Another app of 512 MiB: refused at create and in its settings, with the reason.
    response = api.post("/api/apps", {"name": "second", "repo_url": "https://git.example.com/second.git",
                                      "memory_limit_mb": 512}, content_type="application/json")
    assert response.status_code == 400
    assert "1024 MiB of memory in all" in response.json()["detail"]
    assert "SWITCHYARD_USER_MAX_MEMORY_MB" in response.json()["detail"]
    _own_app(app_repo, tenant, "small-one", settings={"memory_limit_mb": 64})
    response = _patch(api, "small-one", {"memory_limit_mb": 512})
    assert response.status_code == 400 and "1024 MiB of memory in all" in response.json()["detail"]

    # ...and at deploy (the administrator lowered the quota since): counted with big-one's 512.
    Quota.objects.filter(user=tenant).update(memory_mb=560)
    refused = stack.wait(_deploy(api, "small-one"), timeout=120)
    assert refused.state == Deployment.State.FAILED and refused.phase == "fetch"
    assert "576 MiB of memory in all" in refused.error and "SWITCHYARD_USER_MAX_MEMORY_MB" in refused.error
    assert stack.get("big-one.localhost") == (200, "v1")

    # Redeployed at 64 MiB, big-one frees the rest.
    assert stack.wait(_deploy(api, "big-one"), timeout=180).state == Deployment.State.SUCCEEDED
    assert stack.wait(_deploy(api, "small-one"), timeout=180).state == Deployment.State.SUCCEEDED
    assert stack.get("small-one.localhost") == (200, "v1")


def test_two_deploys_at_once_that_together_pass_the_memory_quota_one_goes_live_the_other_fails(stack, app_repo):
    """Compose apps: the containers of each are known at deploy (2), their settings say 1, so
    each deploy alone fits; both at once must not."""
    app_repo.commit_version("v1")
    _compose(app_repo, "services:\n  web:\n    build: .\n    deploy: {replicas: 2}\n")
    tenant = _tenant()
    Quota.objects.create(user=tenant, memory_mb=768)
    for name in ("twin-a", "twin-b"):  # 2 × 256 MiB each at deploy; 768 MiB allowed
        _own_app(app_repo, tenant, name, compose_file="compose.yaml", settings={"memory_limit_mb": 256})
    api = _api(tenant)
    start, sent = threading.Barrier(2), {}

    def deploy(name: str) -> None:
        try:
            start.wait(10)
            sent[name] = _deploy(_api(tenant), name).pk
        finally:
            connection.close()

    threads = [threading.Thread(target=deploy, args=(name,)) for name in ("twin-a", "twin-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ended = {name: stack.wait(Deployment.objects.get(pk=pk), timeout=240) for name, pk in sent.items()}

    states = sorted(deployment.state for deployment in ended.values())
    assert states == [Deployment.State.FAILED, Deployment.State.SUCCEEDED], {n: d.error for n, d in ended.items()}
    failed = next(d for d in ended.values() if d.state == Deployment.State.FAILED)
    assert "1024 MiB of memory in all" in failed.error and "SWITCHYARD_USER_MAX_MEMORY_MB" in failed.error
    winner = next(name for name, d in ended.items() if d.state == Deployment.State.SUCCEEDED)
    assert stack.get(f"{winner}.localhost") == (200, "v1")
    memory = sum(daemon.client().api.inspect_container(c.id)["HostConfig"]["Memory"] for c in containers.listed()
                 if c.app in ended)
    assert memory == 512 * MIB
    assert api.get(f"/api/apps/{winner}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_cannot_both_take_the_owners_last_app(app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = _tenant()
    Quota.objects.create(user=tenant, apps=1)
    start, outcome = threading.Barrier(2), {}

    def create(name: str) -> None:
        try:
            start.wait(10)
            _own_app(app_repo, tenant, name)
            outcome[name] = "created"
        except InvalidInput as error:
            outcome[name] = str(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(f"race-{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert App.objects.filter(owner=tenant).count() == 1
    assert sorted(outcome.values())[0] == "created"
    assert "SWITCHYARD_USER_MAX_APPS" in sorted(outcome.values())[1], outcome


# The compose check at create is bounded ---------------------------------------------------------

class _SlowGitServer:
    """An HTTP server that answers git's first request one byte every 0.2 s, never ending: a
    repository host that holds the panel's request open. `connections`: how many are open."""

    def __init__(self) -> None:
        owner = self
        self.connections = 0

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.connections += 1
                try:
                    self.request.recv(4096)
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while True:
                        self.request.sendall(b"x")
                        time.sleep(0.2)
                except OSError:
                    pass
                finally:
                    owner.connections -= 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repo.git"

    def __enter__(self) -> "_SlowGitServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db
def test_a_compose_check_against_a_slow_repository_gives_up_in_time_with_a_clear_error(
        app_repo, handed_over, monkeypatch):
    app_repo.commit_version("v1")
    tenant = _tenant()
    app = _own_app(app_repo, tenant, "slow-source")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:http")
    with _SlowGitServer() as slow, _with(REMOTE_CHECK_TIMEOUT=2, GIT_TIMEOUT=600):
        App.objects.filter(pk=app.pk).update(repo_url=slow.url)  # set by a superuser, as the app was made
        started = time.monotonic()
        response = _patch(_api(tenant), "slow-source", {"compose_file": "compose.yaml"})
        took = time.monotonic() - started

        assert response.status_code == 400, response.content
        assert took < 10, f"the request took {took:.1f}s"
        assert "took longer than 2s (SWITCHYARD_REMOTE_CHECK_TIMEOUT)" in response.json()["detail"]
        # git and its HTTP helper are gone, not left reading.
        eventually(lambda: slow.connections == 0, "the git connection is closed", timeout=5)

        # The branch check (git ls-remote) is bounded the same way.
        started = time.monotonic()
        response = _patch(_api(tenant), "slow-source", {"branch": "other"})
        took = time.monotonic() - started
        assert response.status_code == 400 and took < 10, (took, response.content)
        assert "no answer within 2s (SWITCHYARD_REMOTE_CHECK_TIMEOUT)" in response.json()["detail"]
        eventually(lambda: slow.connections == 0, "the git connection is closed", timeout=5)
    app.refresh_from_db()
    assert (app.compose_file, app.branch) == ("", "main")


@pytest.mark.django_db
def test_a_compose_check_reads_the_file_not_the_repository_and_a_too_large_tip_is_refused(app_repo, handed_over):
    app_repo.commit_version("v1")
    (app_repo.path / "blob").write_bytes(os.urandom(12 * MIB))
    _compose(app_repo, "services:\n  web:\n    build: .\n")
    tenant = _tenant()
    _own_app(app_repo, tenant, "large-source")
    api = _api(tenant)

    with _with(REMOTE_CHECK_MAX_MB=4):
        # A server that cannot leave file contents out sends the whole tip: refused past the cap.
        response = _patch(api, "large-source", {"compose_file": "compose.yaml"})
        assert response.status_code == 400, response.content
        assert "more than 4 MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB)" in response.json()["detail"]
        assert App.objects.get(name="large-source").compose_file == ""

        # One that can (partial clone): only the commit, its trees and the compose file come.
        app_repo._git("config", "uploadpack.allowFilter", "true")
        response = _patch(api, "large-source", {"compose_file": "compose.yaml"})
        assert response.status_code == 200, response.content
    assert App.objects.get(name="large-source").compose_file == "compose.yaml"

    # A list of branches larger than the cap is not read into the panel's memory.
    head = app_repo._git("rev-parse", "HEAD").strip()
    subprocess.run(["git", "update-ref", "--stdin"], cwd=app_repo.path, check=True, timeout=60,
                   input="".join(f"create refs/heads/many/{'b' * 40}-{i} {head}\n" for i in range(20_000)).encode())
    with _with(REMOTE_CHECK_MAX_MB=1):
        response = _patch(api, "large-source", {"branch": "many/x"})
    assert response.status_code == 400, response.content
    assert "list of branches is larger than 1 MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB)" in response.json()["detail"]


# Nothing on the host --------------------------------------------------------------------------

def _compose(repo: AppRepo, text: str) -> str:
    (repo.path / "compose.yaml").write_text(text)
    return repo._commit("compose")


def test_compose_ports_are_refused_at_create_and_at_deploy_and_nothing_is_published(stack, app_repo):
    port = free_port()
    app_repo.commit_version("v1")
    _compose(app_repo, f"services:\n  web:\n    build: .\n    ports: ['127.0.0.1:{port}:8000']\n")
    tenant = _tenant()

    with pytest.raises(InvalidInput) as refused:
        _own_app(app_repo, tenant, "ported", compose_file="compose.yaml")
    assert f"compose.yaml: services.web.ports: 127.0.0.1:{port}:8000 not supported: traffic reaches apps only " \
           "through HAProxy" in refused.value.errors["compose_file"][0]
    assert not App.objects.filter(name="ported").exists()
    # Nor through the settings, as a tenant.
    single = _own_app(app_repo, tenant, "single")
    response = _patch(_api(tenant), "single", {"compose_file": "compose.yaml"})
    assert response.status_code == 400 and "services.web.ports" in response.json()["detail"]
    single.refresh_from_db()
    assert single.compose_file == ""

    _compose(app_repo, "services:\n  web:\n    build: .\n")
    app = _own_app(app_repo, tenant, "ported", compose_file="compose.yaml")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    _compose(app_repo, f"services:\n  web:\n    build: .\n    ports: ['{port}:8000']\n"
                       "  cache:\n    build: .\n    ports: ['127.0.0.1:6379:6379']\n")

    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.FAILED and second.phase == "fetch"
    assert f"services.web.ports: {port}:8000 not supported" in second.error
    assert "services.cache.ports: 127.0.0.1:6379:6379 not supported" in second.error
    for container in containers.listed():
        host_config = daemon.client().api.inspect_container(container.id)["HostConfig"]
        assert not host_config["PortBindings"] and not host_config["PublishAllPorts"], container.name
    assert stack.get("ported.localhost") == (200, "v1")


# Bounded memory and disk ------------------------------------------------------------------------

def test_the_source_archive_is_streamed_to_the_build_not_read_whole_and_a_huge_one_is_refused(app_repo):
    app_repo.commit_version("big")
    (app_repo.path / "blob").write_bytes(os.urandom(40 * MIB))
    sha = app_repo._commit("a 40 MiB file")
    name = "streamed"
    source.fetch(name, app_repo.url, "main")

    tracemalloc.start()
    try:
        with source.archive(name, sha) as context:
            builds.build_image(context, f"switchyard/{name}:test", "Dockerfile", {LABEL_APP: name},
                               lambda line: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB held while sending a 40 MiB context"
    with _with(MAX_SOURCE_MB=10), pytest.raises(source.SourceError, match=r"larger than 10 MiB \(SWITCHYARD_MAX_SOURCE_MB\)"):
        source.archive(name, sha)
    source.delete_cache(name)


def test_git_runs_at_normal_priority_while_the_deployment_runs_raised():
    """A deployment's thread runs raised (engine/priority.py); the git it starts on the tenant's
    repository does not."""
    normal = os.getpriority(os.PRIO_PROCESS, 0)
    with priority.raised() as allowed:
        result = source._git(["-c", "alias.niceness=!nice", "niceness"])
    if not allowed:
        pytest.skip("raising priority needs CAP_SYS_NICE")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == normal


def test_a_build_with_more_output_than_max_log_bytes_stores_the_cut_log_and_says_so(stack, app_repo):
    limit = settings.SWITCHYARD["MAX_LOG_BYTES"]
    lines = limit // 3900 + 300  # lines of 3,999 characters: under MAX_LOG_LINES, over MAX_LOG_BYTES
    app_repo.commit_version("chatty", extra_dockerfile=(
        'RUN ["/bin/busybox", "sh", "-c", "l=$(/bin/busybox head -c 3999 /dev/zero | /bin/busybox tr \'\\\\0\' x); '
        f'i=0; while [ $i -lt {lines} ]; do echo $l; i=$((i + 1)); done"]\n'))
    app = stack.create_app(app_repo, name="chatty-bytes")

    deployment = stack.wait(stack.deploy(app), timeout=240)

    assert deployment.state == "succeeded", deployment.error
    stored = _log(deployment)
    assert sum(len(line.encode()) for line in stored) <= limit + 100_000
    assert sum(line.startswith("[log cut: output beyond") and "(SWITCHYARD_MAX_LOG_BYTES=" in line
               for line in stored) == 1
    assert any(line.endswith("lines of output were not stored]") for line in stored)
    assert stored[-1] == "Deployment succeeded"


def test_a_line_without_end_is_cut_in_the_live_output_buffer():
    chunk = b"y" * 50_000
    pending, emitted = b"", []
    for _ in range(100):  # 5 MB without a newline
        lines, pending = live_output.split_lines(pending, chunk)
        emitted += lines
        assert len(pending) <= live_output.MAX_PENDING_LINE
    assert emitted and all(len(line) < live_output.MAX_PENDING_LINE + 100 for line in emitted)
    assert "[line cut:" in emitted[0]
    assert live_output.split_lines(b"ab", b"c\nd") == (["abc"], b"d")


def test_old_deployments_logs_are_pruned_by_the_periodic_task(stack, app_repo):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="old-logs")
    days = settings.SWITCHYARD["LOG_RETENTION_DAYS"]
    ended = {"old": timezone.now() - timedelta(days=days + 1), "recent": timezone.now() - timedelta(days=days - 1)}
    made = {}
    for age, finished_at in ended.items():
        made[age] = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED,
                                              finished_at=finished_at)
        LogLine.objects.bulk_create(LogLine(deployment=made[age], seq=i, text=f"line {i}") for i in range(1, 301))
    assert settings.CELERY_BEAT_SCHEDULE["prune-logs"]["task"] == tasks.prune_logs.name

    tasks.prune_logs.delay()  # as beat sends it, to the real worker

    stack.eventually(lambda: LogLine.objects.filter(deployment=made["old"]).count() == 1, "the old log is pruned",
                     timeout=30)
    assert _log(made["old"])[0].startswith(logs.PRUNED_NOTE)
    assert LogLine.objects.filter(deployment=made["recent"]).count() == 300
    assert Deployment.objects.filter(pk=made["old"].pk).exists()
    assert logs.prune() == 0  # pruned once


@pytest.mark.django_db
def test_pruning_deletes_a_batch_of_lines_at_a_time_however_long_one_log_is():
    app = App.objects.create(name="old-logs", repo_url="/x")
    ended = timezone.now() - timedelta(days=settings.SWITCHYARD["LOG_RETENTION_DAYS"] + 1)
    old = [Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, finished_at=ended)
           for _ in range(4)]
    lines = {old[0].pk: 1200, old[1].pk: 2, old[2].pk: 1, old[3].pk: 499}
    LogLine.objects.bulk_create(LogLine(deployment_id=pk, seq=i, text=f"line {i}")
                                for pk, count in lines.items() for i in range(1, count + 1))
    deleted, variables = [], []

    def measured(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        variables.append(len(params or ()))
        if sql.lstrip().upper().startswith("DELETE"):
            deleted.append(context["cursor"].rowcount)
        return result

    with connection.execute_wrapper(measured):
        assert logs.prune() == 4

    assert deleted and max(deleted) <= logs.PRUNE_BATCH, deleted  # one 50,000-line log: not in one statement
    assert sum(deleted) == sum(lines.values()) and max(variables) <= 999
    for deployment in old:
        assert [line.startswith(logs.PRUNED_NOTE) for line in _log(deployment)] == [True]
    assert logs.prune() == 0

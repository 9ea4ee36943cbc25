"""Ceilings are the administrator's, not the tenant's: an app's memory, CPUs, processes, containers,
watch and canary time, and a user's totals, refused above them through the API and the panel's
form; a superuser's quota grants more; a release runs with its limits and its build with the build
limits, and a ceiling holds at deploy. Made as a tenant would: a non-superuser with an app of their
own and an API token."""
import threading

import pytest
from django.conf import settings
from django.forms.models import model_to_dict
from django.test import Client

from deployments import quotas
from deployments.application.app_settings import SETTINGS_FIELDS
from deployments.dockerd import daemon
from deployments.models import App, Deployment, Quota
from tests.support.tenancy import (CGROUPS, MIB, make_tenant, own_app, patch_app, stored_log, switchyard_settings,
                                   token_client)


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


def _an_apps_ceilings_refused(api: Client, app_repo) -> None:
    """Memory, CPUs, processes and containers (replicas, or a Compose file's) above the app's
    ceilings: 400, naming the field and the setting."""
    for field, value, setting in [("memory_limit_mb", 65536, "SWITCHYARD_MAX_APP_MEMORY_MB"),
                                  ("cpu_limit", 64, "SWITCHYARD_MAX_APP_CPUS"),
                                  ("pids_limit", 32768, "SWITCHYARD_MAX_APP_PIDS")]:
        response = patch_app(api, "mine", {field: value})
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["detail"] and setting in response.json()["detail"]
    with switchyard_settings(MAX_APP_CONTAINERS=4):
        response = patch_app(api, "mine", {"replicas": 5})
        assert response.status_code == 400 and "SWITCHYARD_MAX_APP_CONTAINERS" in response.json()["detail"]
    # A Compose file's containers count too (it is read when the setting changes, and at deploy).
    (app_repo.path / "compose.yaml").write_text(
        "services:\n" + "".join(f"  {name}: {{build: ., deploy: {{replicas: 8}}}}\n" for name in ("web", "a", "b")))
    app_repo._commit("24 containers")
    response = patch_app(api, "mine", {"compose_file": "compose.yaml"})
    assert response.status_code == 400 and "the release has 24 containers" in response.json()["detail"]
    assert "SWITCHYARD_MAX_APP_CONTAINERS" in response.json()["detail"]


def _a_users_totals_refused(api: Client) -> None:
    """Per user: memory of all their containers, containers, apps."""
    with switchyard_settings(USER_MAX_MEMORY_MB=1024):
        response = patch_app(api, "mine", {"replicas": 3})
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_MEMORY_MB" in response.json()["detail"]
    with switchyard_settings(USER_MAX_CONTAINERS=2):
        response = patch_app(api, "mine", {"replicas": 3})
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_CONTAINERS" in response.json()["detail"]
    with switchyard_settings(USER_MAX_APPS=1):
        response = api.post("/api/apps", {"name": "second", "repo_url": "https://git.example.com/second.git"},
                            content_type="application/json")
        assert response.status_code == 400 and "SWITCHYARD_USER_MAX_APPS" in response.json()["detail"]


@pytest.mark.django_db
def test_a_tenant_cannot_set_limits_above_the_ceilings_and_a_superusers_quota_grants_more(app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = make_tenant()
    app = own_app(app_repo, tenant, "mine")
    api = token_client(tenant)

    _an_apps_ceilings_refused(api, app_repo)
    app.refresh_from_db()
    assert (app.memory_limit_mb, app.cpu_limit, app.pids_limit, app.replicas) == (512, 1.0, 256, 1)
    assert app.compose_file == ""

    _a_users_totals_refused(api)
    assert not App.objects.filter(name="second").exists()

    _a_quota_grants_more(api, tenant, {"app_memory_mb": 4096, "app_cpus": 4},
                         within={"memory_limit_mb": 4096, "cpu_limit": 4}, above={"memory_limit_mb": 4097})


def _a_quota_grants_more(api: Client, tenant, quota: dict, within: dict, above: dict) -> None:
    """A superuser grants more with the user's quota row (Django admin): `within` is accepted,
    `above` is not. Once the row is gone, a value over a ceiling is kept while other settings change."""
    Quota.objects.create(user=tenant, **quota)
    response = patch_app(api, "mine", within)
    assert response.status_code == 200, response.content
    assert patch_app(api, "mine", above).status_code == 400
    Quota.objects.filter(user=tenant).delete()
    assert patch_app(api, "mine", {"health_path": "/healthz"}).status_code == 200


@pytest.mark.django_db
def test_a_tenant_cannot_watch_or_canary_longer_than_the_ceilings_and_a_superusers_quota_grants_more(
        app_repo, handed_over):
    app_repo.commit_version("v1")
    tenant = make_tenant()
    app = own_app(app_repo, tenant, "mine")
    api = token_client(tenant)

    # The defaults (3600 s each): four hour-long canary steps were accepted before the ceiling.
    response = patch_app(api, "mine", {"canary_steps": [5, 25, 50, 100], "canary_step_seconds": 3600})
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "canary_step_seconds" in detail and "the canary would run 10800 s (3 steps below 100 % × 3600 s)" in detail
    assert "above the most allowed, 3600 s (SWITCHYARD_MAX_APP_CANARY_SECONDS)" in detail
    with switchyard_settings(MAX_APP_WATCH_SECONDS=600, MAX_APP_CANARY_SECONDS=600):
        response = patch_app(api, "mine", {"watch_window": 601})
        assert response.status_code == 400, response.content
        assert "watch_window" in response.json()["detail"]
        assert "601 s is above the most allowed, 600 s (SWITCHYARD_MAX_APP_WATCH_SECONDS)" in response.json()["detail"]
        response = patch_app(api, "mine", {"canary_steps": [10, 50, 100], "canary_step_seconds": 301})
        assert response.status_code == 400 and "SWITCHYARD_MAX_APP_CANARY_SECONDS" in response.json()["detail"]
        assert patch_app(api, "mine", {"watch_window": 600, "canary_steps": [10, 50, 100],
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
    tenant = make_tenant()
    app = own_app(app_repo, tenant, "mine")
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


# A build step that prints the CPU and memory limits it runs under and its pids cgroup.
PRINTS_ITS_LIMITS = (
    'RUN ["/bin/busybox", "sh", "-c", "echo build-cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) '
    '$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); '
    'echo build-memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); '
    '/bin/busybox grep :pids: /proc/self/cgroup; /bin/busybox sleep 2"]\n')


def _build_cgroups() -> str:
    """The glob of this installation's build parents in the pids hierarchy."""
    return f"pids/switchyard-build-{settings.SWITCHYARD['INSTANCE']}-*"


def _deploy_reading_the_build_pids_max(stack, api: Client) -> tuple[Deployment, set]:
    """Deploys `limited` through the API; returns the ended deployment and every pids.max its build
    parents had. Read while a build step runs in it (a container's cgroup inside): the directory is
    made a moment before its pids.max is written, with nothing running in it meanwhile."""
    with _Collect(lambda: {(parent / "pids.max").read_text().strip() for parent in CGROUPS.glob(_build_cgroups())
                           if any(child.is_dir() for child in parent.iterdir())}) as pids_max:
        response = api.post("/api/apps/limited/deploy", {}, content_type="application/json")
        assert response.status_code == 202, response.content
        return stack.wait(Deployment.objects.get(pk=response.json()["id"]), timeout=180), pids_max


def _assert_the_build_ran_with_the_build_limits(lines: list[str], pids_max: set) -> None:
    cpus = int(settings.SWITCHYARD["BUILD_CPUS"] * 100_000)
    assert f"build-cpu {cpus} 100000" in lines, [line for line in lines if "build-" in line]
    assert f"build-memory {settings.SWITCHYARD['BUILD_MEMORY_MB'] * MIB}" in lines
    # Processes: the RUN step ran under a parent cgroup of its own whose pids.max is the build's limit.
    assert any(f":pids:/switchyard-build-{settings.SWITCHYARD['INSTANCE']}-" in line for line in lines)
    assert pids_max == {str(settings.SWITCHYARD["BUILD_PIDS"])}
    assert not list(CGROUPS.glob(_build_cgroups()))  # removed after the build


def test_a_release_runs_with_its_limits_its_build_with_the_build_limits_and_a_ceiling_holds_at_deploy(
        stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile=PRINTS_ITS_LIMITS)
    tenant = make_tenant()
    app = own_app(app_repo, tenant, "limited")
    api = token_client(tenant)
    assert patch_app(api, "limited", {"memory_limit_mb": 96, "cpu_limit": 0.5, "pids_limit": 64}).status_code == 200
    assert patch_app(api, "limited", {"memory_limit_mb": 65536, "cpu_limit": 64}).status_code == 400

    first, pids_max = _deploy_reading_the_build_pids_max(stack, api)

    assert first.state == Deployment.State.SUCCEEDED, first.error
    host_config = daemon.client().api.inspect_container(first.containers[0].id)["HostConfig"]
    assert (host_config["Memory"], host_config["NanoCpus"], host_config["PidsLimit"]) == (96 * MIB, 500_000_000, 64)
    assert not host_config["PortBindings"] and not host_config["PublishAllPorts"]
    _assert_the_build_ran_with_the_build_limits(stored_log(first), pids_max)

    # The administrator's ceiling holds at deploy too (here: a value written around the services,
    # as one lowered since would be): the deployment fails before it builds, the release serves on.
    App.objects.filter(pk=app.pk).update(memory_limit_mb=4096)
    second = stack.deploy_and_wait(app)
    assert second.state == Deployment.State.FAILED and second.phase == "fetch"
    assert "above the most allowed, 2048 MiB (SWITCHYARD_MAX_APP_MEMORY_MB)" in second.error
    assert stack.get("limited.localhost") == (200, "v1")

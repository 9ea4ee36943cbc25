"""The CLI: clear errors for bad input that change nothing, and the happy path end to end."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from deployments.dockerd import containers

from deployments.models import App, Deployment
from deployments.traffic import target

ROOT = Path(__file__).resolve().parents[2]


def _create(*args: str) -> None:
    call_command("apps", "create", *args)


@pytest.mark.parametrize("args, message", [
    (["Bad_Name!", "--repo", "{repo}"], "is not a valid app name"),
    (["web", "--repo", "/nonexistent/repo.git"], "cannot read git repository"),
    (["web", "--repo", "{repo}", "--branch", "main; rm -rf /"], "is not a usable git branch"),
    (["web", "--repo", "{repo}", "--branch", "$(reboot)"], "is not a usable git branch"),
    (["web", "--repo", "{repo}", "--branch", "release"], "branch 'release' does not exist"),
    (["web", "--repo", "{repo}", "--port", "70000"], "port"),
    (["web", "--repo", "{repo}", "--port", "0"], "port"),
    (["web", "--repo", "{repo}", "--domain", "not a host"], "is not a hostname"),
    (["web", "--repo", "{repo}", "--env", "1BAD=x"], "is not an environment variable name"),
    (["web", "--repo", "--upload-pack=touch /tmp/pwned"], "is not a git repository URL"),
    (["web", "--repo", "{repo}", "--compose", "../elsewhere/compose.yaml"], "is not a compose file path"),
    (["web", "--repo", "{repo}", "--compose", "compose.yaml", "--web", "Front End"], "is not a service name"),
    (["web", "--repo", "{repo}", "--canary-steps", "50,25,100"], "must rise, each between 1 and 100"),
    (["web", "--repo", "{repo}", "--canary-steps", "5,25"], "the last canary step must be 100"),
    (["web", "--repo", "{repo}", "--release-command", "sh -c 'unclosed"], "is not a command"),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(stack, app_repo, args, message):
    app_repo.commit_version("v1")
    config_before = target.paths().config.read_text()

    with pytest.raises(CommandError) as error:
        _create(*[a.replace("{repo}", app_repo.url) for a in args])

    assert message in str(error.value)
    assert App.objects.count() == 0
    assert target.paths().config.read_text() == config_before


def test_a_compose_app_is_created_with_its_file_web_service_and_port(stack, app_repo):
    app_repo.commit_version("v1")
    (app_repo.path / "deploy").mkdir()
    (app_repo.path / "deploy" / "compose.yaml").write_text("services: {frontend: {build: .}}\n")
    app_repo._commit("compose file")

    _create("shop", "--repo", app_repo.url, "--compose", "deploy/compose.yaml", "--web", "frontend", "--port", "3000")

    app = App.objects.get(name="shop")
    assert (app.compose_file, app.web_service, app.port) == ("deploy/compose.yaml", "frontend", 3000)


def test_canary_steps_and_a_release_command_are_set_on_create_and_turned_off_on_update(stack, app_repo):
    app_repo.commit_version("v1")

    _create("shop", "--repo", app_repo.url, "--canary-steps", "5,25,50,100", "--canary-step-seconds", "30",
            "--release-command", "manage.py migrate --noinput")
    app = App.objects.get(name="shop")
    assert (app.canary_steps, app.canary_step_seconds) == ([5, 25, 50, 100], 30)
    assert app.release_command == "manage.py migrate --noinput"

    call_command("apps", "update", "shop", "--canary-steps", "")
    assert App.objects.get(name="shop").canary_steps == []


def test_deploy_rejects_a_ref_with_shell_characters(stack, app_repo):
    app_repo.commit_version("v1")
    _create("web", "--repo", app_repo.url)
    with pytest.raises(CommandError, match="is not a usable git branch"):
        call_command("deploy", "web", "--ref", "main`id`")
    with pytest.raises(CommandError, match="No app named 'nope'"):
        call_command("deploy", "nope")
    assert Deployment.objects.count() == 0


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"})


def test_cli_creates_deploys_follows_lists_and_deletes(stack, app_repo):
    app_repo.commit_version("v1")
    created = _manage("apps", "create", "web", "--repo", app_repo.url, "--domain", "web.example.com",
                      "--env", "GREETING=hi", "--replicas", "2")
    assert created.returncode == 0, created.stderr

    followed = _manage("deploy", "web", "--follow")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    lines = followed.stdout.splitlines()
    assert "==> build" in lines and "==> switch" in lines, followed.stdout
    assert lines[-1].startswith("Deployment #") and lines[-1].endswith("is live")
    assert stack.get("web.example.com") == (200, "v1")
    assert len(containers.listed("web")) == 2

    listed = _manage("apps", "list")
    assert listed.stdout.startswith("web\t") and "web.example.com" in listed.stdout

    deleted = _manage("apps", "delete", "web")
    assert deleted.returncode == 0, deleted.stderr
    # The rows go at once; a worker removes the containers after (application/apps.py, delete_app): the
    # command does not wait for it, so neither can the test assume it is done when it returns.
    stack.eventually(lambda: containers.listed("web") == [], "the worker removes the deleted app's containers",
                     timeout=30)
    # Routing is another worker's task (the control queue): the host may answer 503 until it ends.
    stack.eventually(lambda: stack.get("web.example.com")[0] == 404, "HAProxy no longer knows the host")
    again = _manage("apps", "delete", "web")
    assert again.returncode == 0 and "nothing to delete" in again.stdout


def test_follow_exits_nonzero_with_the_reason_on_its_last_line(stack, app_repo):
    app_repo.commit_version("v1")
    app_repo.commit_build_error()
    assert _manage("apps", "create", "web", "--repo", app_repo.url).returncode == 0

    followed = _manage("deploy", "web", "--follow")

    assert followed.returncode != 0
    last_line = followed.stderr.strip().splitlines()[-1]
    assert "failed" in last_line and "does-not-exist" in last_line

"""Nothing a user types can change HAProxy's config beyond its own field: values with
characters HAProxy reads (quotes, $, #, backslash) are refused with what to type instead,
by the API, the panel and the CLI, before anything is saved or written; valid values are
quoted; HAProxy's environment holds no secret; and a bad row written around validation
costs at most its own app's health check, never every app's routing."""
import importlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
import time
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.test import Client

from deployments.application import apps
from deployments.application.app_settings import SETTINGS_FIELDS, AppSpec
from deployments.application.apps import AppChanges
from deployments.audit import Actor
from deployments.haproxy import files, process as haproxy_process, runtime_api
from deployments.models import ApiToken, App, Deployment, Domain
from deployments.traffic import changes, checks, readings, target

ROOT = Path(__file__).resolve().parents[2]
# Each one answered 500 on main and was saved (five of six broke haproxy.cfg); the first
# would have made HAProxy send the panel's secret key to the app with every check.
BAD_PATHS = ['/"${SWITCHYARD_SECRET_KEY}"', '/"', "/a#b", "/$HOME", "/a'b", "/a\\b"]
SECRETS = {"SWITCHYARD_SECRET_KEY": "not-for-haproxy-5521", "DATABASE_URL": "postgres://u:pw-7731@db/sy"}
# busybox httpd passes the raw request line's URI to CGI scripts; this one is healthy only if
# it received exactly the path and Host header it expects (so HAProxy's check proves both).
EXACT_PATH = "/cgi-bin/health?full=1&x=%20&y=(a)"
EXACT_CHECK = ('if [ "$REQUEST_URI" = "' + EXACT_PATH + '" ] && [ "$HTTP_HOST" = "exact.localhost" ]; '
               "then echo 'Status: 200 OK'; else echo 'Status: 500 Unexpected'; fi\necho\necho \"$REQUEST_URI\"")


def create(name: str, repo_url: str, owner=None, **fields) -> App:
    return apps.create_app(AppSpec.of(name=name, repo_url=repo_url, **fields), actor=Actor.cli("test"), owner=owner)


def haproxy_state(app: App) -> tuple:
    location = target.paths()
    row = App.objects.filter(pk=app.pk).values().get()
    return row, list(app.domains.values_list("hostname", flat=True)), location.config.read_text(), \
        location.hosts_map.read_text()


def refusal_names_the_fix(message: str, path: str) -> None:
    assert "percent-encode" in message, message
    assert any(code in message for code in ("%22", "%23", "%24", "%27", "%5C")), message
    assert path in message or repr(path) in message, message


@pytest.fixture
def live(stack, app_repo, django_user_model):
    """An ordinary user's app, deployed and answering through HAProxy."""
    app_repo.commit_version("v1")
    owner = django_user_model.objects.create_user("owner", password="pw-for-owner-0")
    app = create("web", app_repo.url, owner=owner)
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    assert stack.get("web.localhost") == (200, "v1")
    app.refresh_from_db()
    return app


def test_api_refuses_health_paths_haproxy_would_read_and_changes_nothing(stack, live):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(live.owner, 't')[1]}")
    before = haproxy_state(live)

    for path in BAD_PATHS:
        response = client.patch(f"/api/apps/{live.name}", {"health_path": path}, content_type="application/json")

        assert response.status_code in (400, 422), (path, response.content)
        refusal_names_the_fix(response.json()["detail"], path)
        assert haproxy_state(live) == before
        assert stack.get("web.localhost") == (200, "v1")


def test_panel_settings_form_refuses_health_paths_haproxy_would_read(stack, live):
    client = Client()
    client.force_login(live.owner)
    before = haproxy_state(live)

    for path in BAD_PATHS:
        data = {**{name: getattr(live, name) for name in SETTINGS_FIELDS}, "health_path": path, "domains": ""}
        response = client.post(f"/apps/{live.name}/settings", data)

        assert response.status_code == 400, path
        errors = " ".join(response.context["settings_form"].errors.get("health_path", []))
        refusal_names_the_fix(errors, path)
        assert haproxy_state(live) == before
    assert stack.get("web.localhost") == (200, "v1")


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"})


def test_cli_refuses_health_paths_haproxy_would_read_with_exit_1(stack, app_repo):
    app_repo.commit_version("v1")
    create("kept", app_repo.url)
    kept = App.objects.get(name="kept")
    stack.wait_until_routed("kept")
    before = haproxy_state(kept)

    # Two of the paths: each command is a Django start-up of its own, and the API and form tests
    # above send every path through the same validation (application/app_settings.py).
    commands = [(path, command) for path in BAD_PATHS[:2] for command in (
        ("apps", "create", "web", "--repo", app_repo.url, "--health-path", path),
        ("apps", "update", "kept", "--health-path", path))]
    with ThreadPoolExecutor(max_workers=4) as pool:  # each is a process of its own: a Django start-up each
        results = list(pool.map(lambda item: (item[0], _manage(*item[1])), commands))

    for path, result in results:
        assert result.returncode == 1, (path, result.stdout, result.stderr)
        refusal_names_the_fix(result.stderr, path)
    assert list(App.objects.values_list("name", flat=True)) == ["kept"]
    assert haproxy_state(kept) == before


def test_a_path_with_query_and_percent_encoding_is_sent_by_haproxy_exactly(stack, app_repo):
    app_repo.commit_version("exact")
    app_repo._cgi("health", EXACT_CHECK)
    app_repo._commit("health checks its own request line")
    app = create("exact", app_repo.url, health_path=EXACT_PATH)

    deployment = stack.deploy_and_wait(app)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert "uri '/cgi-bin/health?full=1&x=%20&y=(a)'" in target.paths().config.read_text()
    (server,) = readings.servers(app, deployment.colour, 1)
    assert server.status.startswith("UP"), server
    # Same release, another path: the check fails, so UP above was the exact path's doing.
    apps.update_app(App.objects.get(pk=app.pk), AppChanges(settings={"health_path": "/cgi-bin/health?full=2",
                                                                          "health_deadline": 5}), actor=Actor.cli("test"))
    assert stack.deploy_and_wait(app).state == Deployment.State.FAILED


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().partition("=")[::2] for entry in entries if entry)


def test_haproxy_runs_with_no_secret_in_its_environment(stack, monkeypatch, app_repo):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    location = target.paths()
    haproxy_process.stop(location)
    changes.sync_all()  # starts HAProxy from this process, whose environment now holds both
    app_repo.commit_version("v1")
    create("web", app_repo.url)  # a new app: the config changes and HAProxy reloads

    master, worker = haproxy_process.master_pid(location), runtime_api.worker_pid(location.admin_socket)
    for pid in (master, worker):
        environment = _environ(pid)
        assert not set(SECRETS) & set(environment), environment
        assert not any(value in "".join(environment.values()) for value in SECRETS.values())
        assert {name for name in environment if not name.startswith("HAPROXY_")} <= {"PATH", "LANG"}, environment


def test_a_poisoned_row_does_not_stop_haproxy_for_the_other_apps(stack, app_repo):
    app_repo.commit_version("v1")
    good = create("good", app_repo.url)
    assert stack.deploy_and_wait(good).state == Deployment.State.SUCCEEDED
    bad = create("bad", app_repo.url)
    # Written around validation, as a row saved before it existed would be.
    App.objects.filter(pk=bad.pk).update(health_path=BAD_PATHS[0], health_host="x'\n  server evil 10.0.0.1:80")
    Domain.objects.create(app=bad, hostname="bad.example.com\nevil.example.com app_good_blue")
    location = target.paths()
    haproxy_process.stop(location)

    served = subprocess.Popen([sys.executable, "manage.py", "haproxy"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings"})
    output = ""
    try:
        while "HAProxy serves apps" not in output and (line := served.stdout.readline()):
            output += line
        assert "HAProxy serves apps" in output, output
        assert stack.get("good.localhost") == (200, "v1")
        config = location.config.read_text()
        assert "SWITCHYARD_SECRET_KEY" not in config and "evil" not in config
        assert "evil" not in location.hosts_map.read_text()
        assert "bad.localhost app_bad_blue" in location.hosts_map.read_text()  # still routed, checked by TCP only
    finally:
        served.send_signal(signal.SIGTERM)
        output += served.communicate(timeout=30)[0]
    assert "app bad: HTTP health check left out" in output and "are not routed" in output


def test_the_migration_resets_health_values_the_grammar_refuses(transactional_db):
    app = App.objects.create(name="old", repo_url="/srv/old.git", health_path="/a\\b", health_host='x"y')
    fine = App.objects.create(name="fine", repo_url="/srv/fine.git", health_path="/up?x=%20", health_host="fine.test:81")
    held = Deployment.objects.create(app=app, ref="main", health_check={"path": "/$HOME", "status": 200,
                                                                         "host": "x'", "timeout": 2.0})
    migration = importlib.import_module("deployments.migrations.0004_safe_haproxy_values")

    migration.repair(django_apps, None)

    assert App.objects.values_list("health_path", "health_host").get(pk=app.pk) == ("/health", "")
    assert App.objects.values_list("health_path", "health_host").get(pk=fine.pk) == ("/up?x=%20", "fine.test:81")
    held.refresh_from_db()
    assert held.health_check == {"path": "/health", "status": 200, "host": "old.localhost", "timeout": 2.0}


def test_a_config_haproxy_refuses_replaces_no_file_and_the_apps_keep_serving(live, monkeypatch, stack):
    location = target.paths()
    before = location.config.read_text(), location.hosts_map.read_text()
    broken = files.render_config
    monkeypatch.setattr(files, "render_config", lambda *args, **kwargs: broken(*args, **kwargs) + "backend app_web_blue\n    nonsense\n")

    with pytest.raises(haproxy_process.HAProxyConfigInvalid):
        changes.apps_changed()

    assert (location.config.read_text(), location.hosts_map.read_text()) == before
    assert not [p for p in location.directory.iterdir() if p.name.startswith(".haproxy.cfg")]
    assert stack.get("web.localhost") == (200, "v1")


def test_check_app_config_refuses_a_value_it_cannot_quote_before_anything_is_saved(stack, app_repo):
    app_repo.commit_version("v1")
    valid = App(name="next", repo_url=app_repo.url, health_path="/health?x=%20&y=1")
    checks.check_app_config(valid, ["next.example.com"])
    started = time.monotonic()
    checks.check_app_config(valid, [])
    assert time.monotonic() - started < 2

    for unsafe, domains in [(App(name="next", repo_url=app_repo.url, health_path="/a'b"), []),
                            (App(name="next", repo_url=app_repo.url, health_host="a%b"), []),
                            (valid, ["a b.example.com"])]:
        with pytest.raises(haproxy_process.HAProxyConfigInvalid):
            checks.check_app_config(unsafe, domains)
    assert not App.objects.filter(name="next").exists()

"""A Compose app that mounts its repository's own files, against the real stack: a bind-mounted
file and directory, a secret and a config from files of the repository and an env_file, each a
read-only copy of the release's commit in the release's files volume (engine/release_files.py),
replaced under load by the next release's copy; a stateful service whose mounted file did not
change keeps running (and keeps its release's files volume), one whose file changed is replaced."""
import pytest
from django.conf import settings

from deployments.application import apps
from deployments.application.errors import InvalidInput
from deployments.dockerd import daemon, release_files
from deployments.dockerd.values import LABEL_APP, LABEL_INSTANCE
from deployments.models import Deployment
from tests.support.apprepo import AppRepo
from tests.support.stack import TEST_ACTOR

COMPOSE = """services:
  web:
    build: {context: ., dockerfile: web.Dockerfile}
    deploy: {replicas: 2}
    volumes:
      - ./site/greeting.txt:/www/greeting.txt:rw
      - ./site/pages:/www/pages
      - /tmp/scratch
    secrets: [token]
    configs: [{source: banner, target: /etc/banner}]
    env_file: [conf/web.env]
  store:
    build: {context: ., dockerfile: web.Dockerfile}
    command: ["/bin/busybox", "httpd", "-f", "-p", "7000", "-h", "/srv"]
    volumes: ["./store/conf.txt:/srv/conf.txt", "data:/data"]
volumes:
  data: {}
secrets:
  token: {file: ./conf/token.txt}
configs:
  banner: {file: ./conf/banner.txt}
"""
WEB = '["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]'
FILES = """echo 'Status: 200 OK'; echo
echo "token=$(cat /run/secrets/token) banner=$(cat /etc/banner) mode=$MODE"
if echo x 2>/dev/null > /www/greeting.txt; then echo written; else echo read-only; fi
if echo x 2>/dev/null > /www/pages/a.html; then echo written; else echo read-only; fi
if echo x > /tmp/scratch/s; then echo scratch; fi"""
STORE = """echo 'Status: 200 OK'; echo
/bin/busybox wget -q -O - http://store:7000/conf.txt"""


def commit_release(repo: AppRepo, greeting: str, store_conf: str = "store conf 1") -> str:
    (repo.path / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
    (repo.path / "www" / "health").write_text("ok")
    for name, body in (("files", FILES), ("store", STORE)):
        script = repo.path / "www" / "cgi-bin" / name
        script.write_text(f"#!/bin/busybox sh\n{body}\n")
        script.chmod(0o755)
    (repo.path / "web.Dockerfile").write_text(f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD {WEB}\n")
    for path, text in {"site/greeting.txt": greeting, "site/pages/a.html": f"page a of {greeting}",
                       "conf/token.txt": "s3cret", "conf/banner.txt": "hello", "conf/web.env": "# web\nMODE='from file'\n",
                       "store/conf.txt": store_conf, "compose.yaml": COMPOSE}.items():
        (repo.path / path).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / path).write_text(text)
    return repo._commit(greeting)


def files_volumes(app_name: str) -> list[str]:
    return sorted(volume.name for volume in daemon.client().volumes.list(
        filters={"label": [f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}", f"{LABEL_APP}={app_name}",
                           release_files.LABEL_FILES_OF]}))


def deploy_under_load(stack, app, host: str) -> tuple[Deployment, object]:
    with stack.load(host, path="/greeting.txt", max_requests=20000, max_seconds=120) as load:
        load.wait_for(100)
        deployment = stack.wait(stack.deploy(app), timeout=180)
        load.wait_for(load.result.total + 200)
    return deployment, load.result


def store_of(deployment: Deployment):
    return next(service for service in deployment.services if service.name == "store")


def _first_release(stack, app_repo: AppRepo, host: str):
    commit_release(app_repo, "first greeting")
    app = stack.create_app(app_repo, name="files", compose_file="compose.yaml", health_deadline=60)
    first = stack.deploy_and_wait(app)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    assert stack.get(host, "/greeting.txt") == (200, "first greeting")
    assert stack.get(host, "/pages/a.html") == (200, "page a of first greeting")
    assert stack.get(host, "/cgi-bin/store") == (200, "store conf 1")
    status, body = stack.get(host, "/cgi-bin/files")
    assert (status, body.split("\n")) == (200, ["token=s3cret banner=hello mode=from file", "read-only", "read-only",
                                                 "scratch"])
    lines = list(first.log_lines.values_list("text", flat=True))
    assert any(line.startswith("[web] ./site/greeting.txt → /www/greeting.txt: a read-only copy of commit")
               and "rw was written" in line for line in lines), lines
    assert files_volumes(app.name) == [release_files.volume_name(app.name, app.id, first.id)]
    return app, first


@pytest.mark.slow
def test_mounted_repository_files_are_read_only_copies_replaced_by_the_next_release_under_load(stack, app_repo):
    host = "files.localhost"
    app, first = _first_release(stack, app_repo, host)
    volume = lambda deployment: release_files.volume_name(app.name, app.id, deployment.id)  # noqa: E731

    # The greeting changes, the store's file does not: the store keeps running, on the first files volume.
    commit_release(app_repo, "second greeting")
    second, result = deploy_under_load(stack, app, host)
    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert result.failed == [], f"{len(result.failed)} failed, e.g. {result.failed[:3]}"
    assert set(result.bodies()) == {"first greeting", "second greeting"}
    assert stack.get(host, "/greeting.txt") == (200, "second greeting")
    assert store_of(second).started_by == first.id
    assert files_volumes(app.name) == sorted([volume(first), volume(second)])

    # The store's file changes: the store is replaced; the first two files volumes are no longer used.
    commit_release(app_repo, "third greeting", store_conf="store conf 2")
    third, result = deploy_under_load(stack, app, host)
    assert third.state == Deployment.State.SUCCEEDED, third.error
    assert result.failed == [], f"{len(result.failed)} failed, e.g. {result.failed[:3]}"
    assert stack.get(host, "/greeting.txt") == (200, "third greeting")
    assert store_of(third).started_by == third.id
    assert stack.get(host, "/cgi-bin/store") == (200, "store conf 2")
    assert files_volumes(app.name) == [volume(third)]
    lines = list(third.log_lines.values_list("text", flat=True))
    assert f"Removed the files volume {volume(second)}" in lines and f"Removed the files volume {volume(first)}" in lines

    apps.delete_app(app.name, actor=TEST_ACTOR)
    stack.eventually(lambda: files_volumes(app.name) == [], "the worker removes the app's files volume", timeout=30)


def test_the_panel_checks_the_files_a_compose_file_names_at_the_branchs_tip(stack, app_repo):
    commit_release(app_repo, "greeting")
    (app_repo.path / "compose.yaml").write_text(COMPOSE.replace("./conf/token.txt", "./conf/missing.txt")
                                                .replace("./site/pages:", "../outside:"))
    app_repo._commit("a secret that is not there")
    with pytest.raises(InvalidInput) as refused:
        stack.create_app(app_repo, name="checked", compose_file="compose.yaml")
    assert refused.value.errors == {"compose_file": [
        "compose.yaml: secrets.token.file: './conf/missing.txt': there is no 'conf/missing.txt' in the branch's tip",
        "compose.yaml: services.web.volumes: '../outside': it leaves the repository: only files of the repository are "
        "mounted, never a path on the host (it would reach outside the app's confinement): name a file or directory "
        "of the repository relative to the compose file, such as ./conf/nginx.conf"]}

"""A Compose app with an image service (`image:`, no `build`) against the real stack and a real
registry (Debian's docker-registry, tests/support/docker_registry.py): the web service is built
from the repository, its `db` is pulled from 127.0.0.1:PORT, pinned by digest, kept across a
release deployed under load with its volume's counter going on, and a redeploy of the first
release runs the digest it ran even after the tag was pushed again with another image."""
import re

import pytest
from django.conf import settings

from deployments.application import deploys, registry_credentials
from deployments.audit import Actor
from deployments.dockerd import daemon, image_removal
from deployments.models import Deployment
from tests.support.apprepo import AppRepo
from tests.support.docker_registry import LocalRegistry
from tests.stack.test_compose import deploy_under_load

PAGE = re.compile(r"^(v\d+) count=(\d+) db=(\d+)$")
DB_INCR = """#!/bin/busybox sh
n=$(( $(cat /data/counter 2>/dev/null || echo 0) + 1 ))
echo $n > /data/counter.new.$$ && mv /data/counter.new.$$ /data/counter
echo 'Status: 200 OK'; echo; echo "count=$n db=DB_VERSION"
"""
DB_CMD = '["/bin/busybox", "sh", "-c", "mkdir -p /data; exec /bin/busybox httpd -f -p 7000 -h /store"]'
WEB_PAGE = """#!/bin/busybox sh
i=0
while [ $i -lt 50 ]; do
  s=$(/bin/busybox timeout 2 /bin/busybox wget -q -O - http://db:7000/cgi-bin/incr) && [ -n "$s" ] && break
  i=$((i + 1)); /bin/busybox sleep 0.1
done
echo 'Status: 200 OK'; echo; echo "RELEASE $s"
"""
COMPOSE = """services:
  web:
    build: {{context: ., dockerfile: web.Dockerfile}}
    deploy: {{replicas: 2}}
    init: true
    depends_on: {{db: {{condition: service_healthy}}}}
  db:
    image: {image}
    pull_policy: {pull_policy}
    volumes: [data:/data]
    healthcheck:
      test: [CMD, /bin/busybox, wget, -q, -O, /dev/null, "http://localhost:7000/health"]
      interval: 1s
      timeout: 2s
      retries: 30
    stop_grace_period: 2s
volumes:
  data: {{}}
"""


class ImageServiceRepo(AppRepo):
    def commit_release(self, release: str, db_image: str, pull_policy: str = "always") -> str:
        (self.path / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
        (self.path / "www" / "health").write_text("ok")
        page = self.path / "www" / "cgi-bin" / "page"
        page.write_text(WEB_PAGE.replace("RELEASE", release))
        page.chmod(0o755)
        (self.path / "web.Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n'
            'CMD ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]\n')
        (self.path / "compose.yaml").write_text(COMPOSE.format(image=db_image, pull_policy=pull_policy))
        return self._commit(release)


def push_db(registry: LocalRegistry, version: int) -> str:
    return registry.push_image("sy-test/db:1", {"store/health": "ok",
                                                "store/cgi-bin/incr": DB_INCR.replace("DB_VERSION", str(version))},
                               DB_CMD)


UNTRUSTED_PRIVATE = settings.UNTRUSTED_PRIVATE_REGISTRY  # listed, at a private address, not trusted


def page(stack, host: str) -> tuple[str, int, int]:
    status, body = stack.get(host, "/cgi-bin/page")
    assert status == 200, body
    release, count, db = PAGE.match(body.strip()).groups()
    return release, int(count), int(db)


def db_of(deployment: Deployment):
    return next(service for service in deployment.services if service.name == "db")


def running_image(service) -> str:
    return daemon.client().api.inspect_container(service.containers[0].id)["Image"]


@pytest.mark.slow
def test_an_image_service_is_pinned_kept_under_load_and_redeployed_by_digest(registry, stack, tmp_path):
    """registry first: it stops (and its images go) after the stack removed the containers."""
    host = "images.example.test"
    db_image = f"{registry.host}/sy-test/db:1"
    repo = ImageServiceRepo(tmp_path / "repo")
    app, first = _first_release_pins_the_digest(stack, registry, repo, host, db_image)
    count_v2 = _second_release_under_load_keeps_the_db(stack, repo, app, host, first, db_image)
    digest_2 = push_db(registry, 2)  # the same tag, another image
    assert f"@{digest_2}" not in first.pinned_images["db"]["pinned"]
    count_after = _redeploy_runs_the_first_digest(stack, host, first, count_v2)
    third = stack.wait(stack.deploy(app), timeout=180)  # a new deploy pulls the tag again: the new image
    assert third.state == Deployment.State.SUCCEEDED, third.error
    assert third.pinned_images["db"]["pinned"] == f"{registry.host}/sy-test/db@{digest_2}"
    release, count_v3, db_version = page(stack, host)
    assert db_version == 2 and count_v3 > count_after  # a new db container, the same volume
    _a_redeploy_pulls_its_digest_again_once_docker_lost_it(stack, host, first, count_v3)


def _a_redeploy_pulls_its_digest_again_once_docker_lost_it(stack, host, first, count_v3) -> None:
    image_removal.remove_images([first.pinned_images["db"]["image_id"]], force=True)  # no container uses it now
    again = stack.wait(deploys.redeploy(first, actor=Actor.cli("test")), timeout=180)
    assert again.state == Deployment.State.SUCCEEDED, again.error
    assert f"[db] pulled {db_of(first).image} again by digest" in again.log_lines.values_list("text", flat=True)
    assert running_image(db_of(again)) == first.pinned_images["db"]["image_id"]
    release, count, db_version = page(stack, host)
    assert (release, db_version) == ("v1", 1) and count > count_v3


def _first_release_pins_the_digest(stack, registry, repo, host, db_image):
    digest_1 = push_db(registry, 1)
    repo.commit_release("v1", db_image)
    app = stack.create_app(repo, name="imgdb", compose_file="compose.yaml", domains=[host], health_deadline=60)
    first = stack.wait(stack.deploy(app), timeout=180)
    assert first.state == Deployment.State.SUCCEEDED, first.error
    pinned = f"{registry.host}/sy-test/db@{digest_1}"
    assert first.pinned_images["db"]["pinned"] == pinned and db_of(first).image == pinned
    assert running_image(db_of(first)) == first.pinned_images["db"]["image_id"]
    lines = list(first.log_lines.values_list("text", flat=True))
    assert f"[db] {db_image} (pull_policy always): runs {pinned} " \
           f"(image {first.pinned_images['db']['image_id'][:19]})" in lines
    assert page(stack, host)[2] == 1
    return app, first


def _second_release_under_load_keeps_the_db(stack, repo, app, host, first, db_image) -> int:
    _, count_v1, _ = page(stack, host)
    repo.commit_release("v2", db_image)
    second, load = deploy_under_load(stack, app, host)
    assert second.state == Deployment.State.SUCCEEDED, second.error
    assert load.failed == [], f"{len(load.failed)} failed, e.g. {load.failed[:3]}"
    assert db_of(second).image == db_of(first).image and db_of(second).containers == db_of(first).containers
    release, count_v2, _ = page(stack, host)
    assert release == "v2" and count_v2 > count_v1 + 100  # the volume's counter went on under load
    return count_v2


def _redeploy_runs_the_first_digest(stack, host, first, count_v2) -> int:
    redeploy = stack.wait(deploys.redeploy(first, actor=Actor.cli("test")), timeout=180)
    assert redeploy.state == Deployment.State.SUCCEEDED, redeploy.error
    assert db_of(redeploy).image == db_of(first).image and redeploy.pinned_images == first.pinned_images
    assert running_image(db_of(redeploy)) == first.pinned_images["db"]["image_id"]
    release, count_after, db_version = page(stack, host)
    assert (release, db_version) == ("v1", 1) and count_after > count_v2
    return count_after


@pytest.mark.slow
def test_refused_images_name_the_service_and_a_private_registry_needs_the_apps_credentials(
        auth_registry, stack, tmp_path):
    db_image = f"{auth_registry.host}/sy-test/db:1"
    push_db(auth_registry, 1)
    repo = ImageServiceRepo(tmp_path / "repo")
    repo.commit_release("v1", db_image)
    app = stack.create_app(repo, name="privdb", compose_file="compose.yaml", health_deadline=60)
    refused = {
        db_image: f"services.db.image: {db_image}: no image this app may use has that name",  # no credentials
        "registry.example.org/team/db:1": "services.db.image: registry.example.org/team/db:1: images come only from",
        f"{UNTRUSTED_PRIVATE}/team/db:1": f"services.db.image: {UNTRUSTED_PRIVATE}/team/db:1: the registry 10.0.0.1 "
                                          "is at a private address (10.0.0.1)",
        "switchyard-base:bookworm": "services.db.image: switchyard-base:bookworm: no image this app may use",
    }
    for image, reason in refused.items():
        if image != db_image:  # committed already
            repo.commit_release("v1", image)
        failed = stack.wait(stack.deploy(app), timeout=120)
        assert failed.state == Deployment.State.FAILED and reason in failed.error, (image, failed.error)
        assert not failed.containers and not failed.services
    registry_credentials.set_registry_credentials(app, host=auth_registry.host, username="puller",
                                                  password="pull-S3cret", actor=Actor.cli("test"))
    repo.commit_release("v1", db_image)
    deployed = stack.wait(stack.deploy(app), timeout=180)
    assert deployed.state == Deployment.State.SUCCEEDED, deployed.error
    assert db_of(deployed).image.startswith(f"{auth_registry.host}/sy-test/db@sha256:")
    repo.commit_release("v1", db_image, pull_policy="missing")  # would use the image on the host as it is
    other = stack.create_app(repo, name="otherdb", compose_file="compose.yaml", health_deadline=60)
    failed = stack.wait(stack.deploy(other), timeout=120)  # the image is on the host, but not this app's to use
    assert failed.state == Deployment.State.FAILED and refused[db_image] in failed.error, failed.error
    assert "this app never pulled it: pulling it" in " ".join(failed.log_lines.values_list("text", flat=True))
    _a_dockerfile_from_the_private_image_needs_the_apps_credentials_too(stack, tmp_path, db_image)


def _a_dockerfile_from_the_private_image_needs_the_apps_credentials_too(stack, tmp_path, db_image: str) -> None:
    """The image is on the host (privdb pulled it), but a build FROM it pulls it first, with this
    app's credentials, so that its registry checks this app's access."""
    repo = AppRepo(tmp_path / "from-repo")
    (repo.path / "Dockerfile").write_text(f"FROM {db_image}\n"
                                          'CMD ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/store"]\n')
    repo._commit("FROM the private image")
    app = stack.create_app(repo, name="frompriv", health_deadline=60)
    failed = stack.wait(stack.deploy(app), timeout=120)
    assert failed.state == Deployment.State.FAILED and failed.phase == "build", failed.error
    assert f"FROM {db_image}: no image this app may use has that name" in failed.error, failed.error
    registry_credentials.set_registry_credentials(app, host=db_image.split("/")[0], username="puller",
                                                  password="pull-S3cret", actor=Actor.cli("test"))
    built = stack.wait(stack.deploy(app), timeout=180)
    assert built.state == Deployment.State.SUCCEEDED, built.error
    assert stack.get("frompriv.localhost", "/health") == (200, "ok")

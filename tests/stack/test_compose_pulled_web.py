"""A Compose app whose routed service is an image from a registry (`image:`, no build; as wordpress
in awesome-compose's wordpress-mysql), against the real stack and a real registry
(tests/support/docker_registry.py): every release runs the digest it pinned, whether it is deployed,
redeployed from the panel's path, rolled back to in the watch, or redeployed after Docker lost the
image; and pulled images no kept release uses are removed, but never one another app holds."""
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from deployments.application import apps as app_actions
from deployments.application import deploys
from deployments.application.errors import NotPossible
from deployments.audit import Actor
from deployments.dockerd import daemon, image_removal, images, pins
from deployments.models import App, Deployment
from tests.support.apprepo import AppRepo, STAMP_AND_SERVE
from tests.support.docker_registry import LocalRegistry
from tests.support.eventually import eventually

COMPOSE = """services:
  site:
    image: {image}
    pull_policy: always
    stop_grace_period: 1s
"""
FAILS_AFTER_3S = ("if [ $(( $(date +%s) - $(cat /tmp/started) )) -ge 3 ]; then echo 'Status: 500 Broken'; "
                  "else echo 'Status: 200 OK'; fi\necho\necho health")
ACTOR = Actor.cli("test")


class ComposeOnlyRepo(AppRepo):
    def commit_compose(self, image: str) -> str:
        (self.path / "compose.yaml").write_text(COMPOSE.format(image=image))
        return self._commit("compose")


def push_site(registry: LocalRegistry, version: str, health: str = "echo 'Status: 200 OK'\necho\necho health") -> str:
    """site:1 serving `version` at /, its /cgi-bin/health answering as `health` says; returns its digest."""
    return registry.push_image("sy-test/site:1", {"www/index.html": version,
                                                  "www/cgi-bin/health": f"#!/bin/busybox sh\n{health}\n"},
                               STAMP_AND_SERVE)


def running_image(deployment: Deployment) -> str:
    return daemon.client().api.inspect_container(deployment.containers[0].id)["Image"]


def deployed(stack, deployment: Deployment, state: str = Deployment.State.SUCCEEDED) -> Deployment:
    deployment = stack.wait(deployment, timeout=180)
    assert deployment.state == state, deployment.error
    return deployment


def make_app(stack, registry, tmp_path, name: str) -> App:
    repo = ComposeOnlyRepo(tmp_path / f"repo-{name}")
    repo.commit_compose(f"{registry.host}/sy-test/site:1")
    return stack.create_app(repo, name=name, compose_file="compose.yaml", web_service="site",
                            health_path="/cgi-bin/health", health_deadline=30)


@pytest.mark.slow
def test_a_pulled_web_service_runs_its_pinned_digest_when_redeployed_and_rolled_back_to(registry, stack, tmp_path):
    host = "pulledweb.localhost"
    digest_1 = push_site(registry, "v1")
    app = make_app(stack, registry, tmp_path, "pulledweb")
    first = deployed(stack, stack.deploy(app))
    assert first.image == first.pinned_images["site"]["pinned"] == f"{registry.host}/sy-test/site@{digest_1}"
    assert running_image(first) == first.pinned_images["site"]["image_id"]
    assert stack.get(host) == (200, "v1")
    _the_deployment_page_shows_the_digest(first)
    push_site(registry, "v2")  # the same tag, another image
    second = deployed(stack, stack.deploy(app))
    assert second.image != first.image and stack.get(host) == (200, "v2")

    again = deployed(stack, deploys.redeploy(first, actor=ACTOR))  # the panel's path: kept_images decides
    assert again.image == first.image and again.pinned_images == first.pinned_images
    assert running_image(again) == first.pinned_images["site"]["image_id"] and stack.get(host) == (200, "v1")

    push_site(registry, "v3", health=FAILS_AFTER_3S)
    App.objects.filter(pk=app.pk).update(watch_window=30)
    bad = deployed(stack, stack.deploy(app), state=Deployment.State.ROLLED_BACK)
    assert f"traffic is back on deployment #{again.id}" in bad.error and bad.image not in (first.image, second.image)
    assert App.objects.get(pk=app.pk).live_deployment_id == again.id
    assert running_image(again) == first.pinned_images["site"]["image_id"] and stack.get(host) == (200, "v1")
    App.objects.filter(pk=app.pk).update(watch_window=0)
    _a_redeploy_pulls_the_digest_again_once_docker_lost_it(stack, host, first, second)


def _the_deployment_page_shows_the_digest(deployment: Deployment) -> None:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="a long enough password"))
    page = client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'id="deployment-images"' in page and f"<code>{deployment.image}</code>" in page


def _a_redeploy_pulls_the_digest_again_once_docker_lost_it(stack, host, first, second) -> None:
    deployed(stack, deploys.redeploy(second, actor=ACTOR))  # no container runs v1's image now
    assert stack.get(host) == (200, "v2")
    image_removal.remove_images([first.pinned_images["site"]["image_id"]], force=True)
    assert images.image_facts(first.image) is None
    back = deployed(stack, deploys.redeploy(first, actor=ACTOR))
    assert f"[site] pulled {first.image} again by digest" in back.log_lines.values_list("text", flat=True)
    assert running_image(back) == first.pinned_images["site"]["image_id"] and stack.get(host) == (200, "v1")


def on_docker(pinned: str) -> bool:
    """Whether `docker images --digests` still lists the image by that reference."""
    return any(pinned in (image.get("RepoDigests") or ()) for image in daemon.client().api.images())  # not
    # images.list(): it inspects each image it lists, and one another test removes meanwhile fails it


@pytest.mark.slow
def test_pulled_images_no_kept_release_uses_are_removed_unless_another_app_holds_them(registry, stack, tmp_path):
    push_site(registry, "v1")
    app = make_app(stack, registry, tmp_path, "prunea")
    other = make_app(stack, registry, tmp_path, "pruneb")
    releases = [deployed(stack, stack.deploy(app))]
    shared = deployed(stack, stack.deploy(other))  # the same tag: the same image, held by both apps
    assert shared.image == releases[0].image
    kept = settings.SWITCHYARD["KEEP_IMAGES"]
    for version in range(2, kept + 3):  # the last deploy keeps itself and the kept - 1 before it
        push_site(registry, f"v{version}")
        releases.append(deployed(stack, stack.deploy(app)))
    assert len({release.image for release in releases}) == kept + 2
    assert not on_docker(releases[1].image)  # not kept, held by no other app: removed
    log = list(releases[kept + 1].log_lines.values_list("text", flat=True))
    assert any(line.startswith("Let go of the pulled image") and releases[1].image in line for line in log), log
    assert all(on_docker(release.image) for release in releases[2:])  # kept
    assert on_docker(releases[0].image)  # not kept by this app, but the other app runs it
    assert stack.get("pruneb.localhost") == (200, "v1") and stack.get("prunea.localhost") == (200, f"v{kept + 2}")
    app_actions.delete_app("pruneb", actor=ACTOR)  # its containers stopped, its holds let go of
    eventually(lambda: not on_docker(releases[0].image), "the deleted app's pulled image removed", 60)
    assert on_docker(releases[-1].image) and other.id not in pins.held_app_ids()
    pins.hold(other.id + 1000, releases[-1].image)  # an app deleted while no worker ran its removal
    assert f"of deleted app #{other.id + 1000}" in stack.reconcile()
    assert other.id + 1000 not in pins.held_app_ids() and on_docker(releases[-1].image)  # the app still holds it
    with pytest.raises(NotPossible, match="no longer kept"):
        deploys.redeploy(releases[1], actor=ACTOR)  # no longer kept: the panel does not offer it

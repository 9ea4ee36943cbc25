"""Images: inspected as a build would resolve them, pulled within bounds, listed and pruned per app."""
import hashlib
import json
from typing import Callable

import docker
import docker.errors
from django.conf import settings
import requests
from docker.types.daemon import CancellableStream

from deployments.dockerd import cancel, daemon
from deployments.dockerd.build_errors import BuildFailed, BuildStopped
from deployments.dockerd.values import LABEL_APP_ID, LABEL_BUILD_BASES, LABEL_SOURCE, Image, instance_label


def image_id(tag: str) -> str:
    try:
        return daemon.client().images.get(tag).id
    except docker.errors.ImageNotFound:
        return ""


SWITCHYARD_LABEL_STEP = "#(nop)  LABEL switchyard."  # how history shows the build's own LABEL step(s)


def built_from(tag: str) -> str:
    """What a built image is made of, as a hash: each step as Docker's history records it (a
    COPY or ADD with its files' content hash, a RUN with its command) and its base images
    (LABEL_BUILD_BASES, a step too). Two builds of the same files and bases are equal here even
    when the build cache gave them different IDs: the classic builder takes the newest of sibling
    cache entries, so a build that raced with another one, or whose cache was pruned, makes a new
    image of the same files. "" for an image without the label (pulled, or built before it).
    The build's own label steps, the newest ones, are left out (LABEL_SOURCE names the whole build
    context's git tree, which a commit changes without changing what this image is made of; and
    an image labelled one step per label, as before, hashes as one labelled in one step), and the
    bases label's value counted instead."""
    facts = image_facts(tag)
    if facts is None or LABEL_BUILD_BASES not in facts.labels:
        return ""
    steps = [entry.get("CreatedBy", "") for entry in daemon.client().api.history(tag)]  # the newest first
    while steps and SWITCHYARD_LABEL_STEP in steps[0]:
        steps.pop(0)
    return hashlib.sha256(json.dumps(steps + [facts.labels[LABEL_BUILD_BASES]]).encode()).hexdigest()


def built_from_source(repository: str, source: str, app_id: int) -> str:
    """The ID of an image of `repository` this installation built for app `app_id` from `source`
    (LABEL_SOURCE), or ""."""
    wanted = [instance_label(), f"{LABEL_APP_ID}={app_id}", f"{LABEL_SOURCE}={source}"]
    found = daemon.client().api.images(name=repository, filters={"label": wanted}, quiet=True)
    return found[0] if found else ""


def tag_image(image_id: str, tag: str) -> bool:
    """Give the image one more tag; False if Docker no longer has it."""
    repository, name = tag.rsplit(":", 1)
    try:
        daemon.client().api.tag(image_id, repository, tag=name)
    except docker.errors.NotFound:
        return False
    return True


def image_exists(tag: str) -> bool:
    try:
        daemon.client().images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_facts(reference: str) -> "Image | None":
    """An image as Docker resolves `reference` for a build (tag, ID, short ID or digest), or None
    if it has none by that name."""
    try:
        found = daemon.client().api.inspect_image(reference)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as error:
        if error.status_code in (400, 404):  # not a valid reference: no image by that name
            return None
        raise daemon.RuntimeFailure(f"Docker could not inspect {reference}: {error.explanation or error}") from error
    config = found.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    return Image(id=found["Id"], tags=tuple(found.get("RepoTags") or ()), labels=config.get("Labels") or {},
                 env=env, onbuild=tuple(config.get("OnBuild") or ()),
                 repo_digests=tuple(found.get("RepoDigests") or ()))


def pull_image(reference: str, should_stop: Callable[[], bool] = lambda: False, timeout: int | None = None,
               auth_config: dict | None = None, platform: str = "") -> bool:
    """Pull `reference` from its registry (a base image the build check needs to see before the
    build); False if Docker could not, for whatever reason (no such image, no registry reachable,
    not a reference at all): the check then refuses the name, the same way as an unusable one.

    A registry decides how fast and how much it sends, so the pull is bounded like the build:
    stopped on request (BuildStopped) or after `timeout` seconds (default BUILD_TIMEOUT), and once
    its layers add up to more than MAX_PULL_MB (both BuildFailed). Stopping closes the connection;
    dockerd cancels a pull whose client went away. `auth_config` ({"username", "password"}) goes to
    dockerd with this pull only: the caller gives it only for the registry it was stored for."""
    timeout = timeout or settings.SWITCHYARD["BUILD_TIMEOUT"]
    stop_now = cancel.Deadline(timeout, should_stop)
    repository, tag = docker.utils.parse_repository_tag(reference)
    api = _PullClient(read_timeout=timeout, **daemon.own_client_options())
    try:
        stream = api.pull(repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth_config,
                          platform=platform or None)
        with cancel.StopWatcher(stop_now, stream.close) as watcher:
            pulled = bool(watcher.unless_stopped(lambda: _follow_pull(stream, reference)))
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        pulled = False
    finally:
        api.close()
    if stop_now():  # whatever the closed (or timed out) connection made of the pull
        if stop_now.expired:
            raise BuildFailed(f"pulling {reference} did not finish within {timeout} s")
        raise BuildStopped()
    return pulled


class _PullClient(cancel.CancellableClient):
    """docker-py sends a pull with no HTTP timeout; this gives it one (the pull's deadline), for a
    registry that holds dockerd up before the first progress event, when there is no stream to close."""

    def __init__(self, read_timeout: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.read_timeout = read_timeout

    def _post(self, url, **kwargs):
        if url.endswith("/images/create"):
            kwargs["timeout"] = self.read_timeout
        return super()._post(url, **kwargs)


def _follow_pull(stream: CancellableStream, reference: str) -> bool:
    """Read a pull's progress events: False on Docker's error event; BuildFailed (and the stream
    closed) once the layers' declared sizes add up to more than MAX_PULL_MB."""
    cap_mb = settings.SWITCHYARD["MAX_PULL_MB"]
    layer_sizes: dict[str, int] = {}
    for event in stream:
        if "error" in event:
            return False
        total = (event.get("progressDetail") or {}).get("total")
        if event.get("id") and isinstance(total, int):
            layer_sizes.setdefault(event["id"], total)  # downloading, then extracting: counted once
        if sum(layer_sizes.values()) > cap_mb * 1024 * 1024:
            stream.close()
            raise BuildFailed(f"pulling {reference} stopped: larger than {cap_mb} MiB (SWITCHYARD_MAX_PULL_MB)")
    return True


def repo_digests(reference: str) -> tuple[str, ...]:
    """The `repository@sha256:...` names Docker knows the image `reference` by (after a pull)."""
    try:
        return tuple(daemon.client().api.inspect_image(reference).get("RepoDigests") or ())
    except docker.errors.NotFound:
        return ()


def app_images(repository: str) -> list[str]:
    """Tags of one app's images (repository:tag), its services' too (repository/SERVICE:tag)."""
    # One plain listing (the SDK's images.list inspects each image; dockerd reads every image on the
    # daemon for each listing): its `reference` patterns match either way. Another installation's
    # images are not ours to prune.
    found = daemon.client().api.images(filters={"reference": [repository, f"{repository}/*"],
                                                "label": instance_label()})
    tags = []
    for image in found:
        tags += [t for t in image.get("RepoTags") or () if t.startswith((repository + ":", repository + "/"))
                 and t not in tags]
    return tags


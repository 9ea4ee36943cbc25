"""The drain phase: a Compose app's workers replaced, the previous release retired
(engine/retire.py: out of service, requests in flight finished, containers stopped), services
this release replaced removed, files volumes no container uses removed, and old images pruned,
built and pulled (the last successful releases' stay for a rollback or a redeploy).

The prune runs beside the retire: both mostly wait for dockerd (stopping a container takes it
a few hundred ms), and neither needs the other, except that an image a stopping container still
uses is left alone (Docker refuses it): those are removed again after the retire. The app's images
are listed once: dockerd reads every image on the daemon for each listing, whatever its filter."""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from deployments.dockerd import containers, image_removal, images, pins
from deployments.engine import release_files
from deployments.engine.phases.context import DeploymentContext
from deployments.engine.chain import retire_previous_chain
from deployments.engine.retire import retire


def drain(ctx: DeploymentContext) -> None:
    ctx.companions.replace_workers()
    kept = kept_images(ctx)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prune") as pool:
        early = pool.submit(prune_builds, kept)  # Docker only: the database stays with this thread
        retire_previous(ctx)
        pruned = early.result()
    retire_previous_chain(ctx)
    ctx.companions.retire_replaced()
    for name in release_files.remove_unused(ctx.app.name, ctx.app.id):  # the replaced services' too
        ctx.log.write(f"Removed the files volume {name}")
    pruned = pruned.again()  # what the retired containers still used
    for line in pruned.lines() + let_go_of_pulled(kept):
        ctx.log.write(line)


def retire_previous(ctx: DeploymentContext) -> None:
    previous = ctx.previous
    if previous is None:
        ctx.log.write("No previous release to retire")
    elif ctx.stopped_previous:
        for container in previous.containers:
            containers.stop_and_remove(container.id, timeout=0)
        ctx.log.write(f"Removed the previous release (deployment #{previous.id})")
    else:
        retire(previous, stop_timeout=ctx.web_stop_timeout(), say=ctx.log.write)
        ctx.say_web(f"Retired the previous release (deployment #{previous.id}, {previous.short_sha})")


@dataclass(frozen=True)
class KeptImages:
    """What the prune leaves: the app's repository, the tags and the pulled digests kept releases use."""
    app_id: int
    repository: str
    tags: frozenset[str]
    digests: frozenset[str]


def kept_images(ctx: DeploymentContext) -> KeptImages:
    """The app's builds and pulled images that the kept releases use (read from the database)."""
    app = ctx.app
    web_images = app.kept_images(newest=ctx.deployment.image)
    return KeptImages(app.id, app.image_repository(), frozenset(app.kept_service_images(web_images)),
                      frozenset(pinned.rsplit("@", 1)[1] for pinned in app.kept_pinned_images(web_images)))


@dataclass(frozen=True)
class Pruned:
    """The app's old builds removed, and those Docker refused (a container still used them)."""
    removed: tuple[str, ...]
    refused: tuple[str, ...]

    def again(self) -> "Pruned":
        """The refused ones removed again (once the containers that used them are gone)."""
        removed = tuple(image_removal.remove_images(self.refused))
        return Pruned(self.removed + removed, tuple(t for t in self.refused if t not in removed))

    def lines(self) -> list[str]:
        return [f"Removed old images: {', '.join(self.removed)}"] if self.removed else []


def prune_builds(kept: KeptImages) -> Pruned:
    """The app's builds that no kept release uses; one a container still uses is refused (Pruned.again)."""
    old = [tag for tag in images.app_images(kept.repository) if tag not in kept.tags]
    removed = tuple(image_removal.remove_images(old))
    return Pruned(removed, tuple(tag for tag in old if tag not in removed))


def let_go_of_pulled(kept: KeptImages) -> list[str]:
    """The pulled images the app holds (dockerd/pins.py) that no kept release uses. After the
    retire only: a hold let go of while a container made from the image still exists keeps the
    image, and no later look would find it."""
    lines = []
    for digest in sorted(pins.held_digests(kept.app_id) - kept.digests):
        removed = pins.let_go(kept.app_id, digest)
        lines.append(f"Let go of the pulled image {digest[:19]}: " + (
            f"removed {', '.join(removed)}" if removed else "another app holds it, or a container was made from it"))
    return lines

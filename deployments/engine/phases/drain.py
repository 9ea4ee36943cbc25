"""The drain phase: a Compose app's workers replaced, the previous release retired
(engine/retire.py: out of service, requests in flight finished, containers stopped), services
this release replaced removed, files volumes no container uses removed, and old images pruned,
built and pulled (the last successful releases' stay for a rollback or a redeploy).

The prune runs beside the retire: both mostly wait for dockerd (stopping a container takes it
a few hundred ms), and neither needs the other, except that an image a stopping container still
uses is left alone (Docker refuses it): a second look after the retire takes those."""
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
        removed = early.result()
    retire_previous_chain(ctx)
    ctx.companions.retire_replaced()
    for name in release_files.remove_unused(ctx.app.name, ctx.app.id):  # the replaced services' too
        ctx.log.write(f"Removed the files volume {name}")
    for line in removed + prune_builds(kept) + let_go_of_pulled(kept):  # and what the retire freed
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


def prune_builds(kept: KeptImages) -> list[str]:
    """The app's builds that no kept release uses; one a container still uses stays (for the next look)."""
    removed = image_removal.remove_images(t for t in images.app_images(kept.repository) if t not in kept.tags)
    return [f"Removed old images: {', '.join(removed)}"] if removed else []


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

"""The drain phase: a Compose app's workers replaced, the previous release retired
(engine/retire.py: out of service, requests in flight finished, containers stopped), services
this release replaced removed, files volumes no container uses removed, and old images pruned,
built and pulled (the last successful releases' stay for a rollback or a redeploy)."""
from deployments.dockerd import containers, image_removal, images, pins
from deployments.engine import release_files
from deployments.engine.phases.context import DeploymentContext
from deployments.engine.chain import retire_previous_chain
from deployments.engine.retire import retire


def drain(ctx: DeploymentContext) -> None:
    ctx.companions.replace_workers()
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
    retire_previous_chain(ctx)
    ctx.companions.retire_replaced()
    for name in release_files.remove_unused(ctx.app.name, ctx.app.id):  # the replaced services' too
        ctx.log.write(f"Removed the files volume {name}")
    prune_images(ctx)


def prune_images(ctx: DeploymentContext) -> None:
    """Images no kept release uses: the app's builds, and the pulled images it holds (dockerd/pins.py)."""
    app = ctx.app
    web_images = app.kept_images(newest=ctx.deployment.image)
    kept = app.kept_service_images(web_images)
    removed = image_removal.remove_images(t for t in images.app_images(app.image_repository()) if t not in kept)
    if removed:
        ctx.log.write(f"Removed old images: {', '.join(removed)}")
    kept_digests = {pinned.rsplit("@", 1)[1] for pinned in app.kept_pinned_images(web_images)}
    for digest in sorted(pins.held_digests(app.id) - kept_digests):
        removed = pins.let_go(app.id, digest)
        ctx.log.write(f"Let go of the pulled image {digest[:19]}: " + (
            f"removed {', '.join(removed)}" if removed else "another app holds it, or a container was made from it"))

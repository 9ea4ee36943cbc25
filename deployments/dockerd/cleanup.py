"""Everything of this installation removed from Docker at once (tests, benchmarks)."""

from deployments.dockerd import containers, daemon, image_removal, networks, pins
from deployments.dockerd.values import instance_label

SET_ASIDE_WAIT = 300  # seconds


def remove_instance_resources() -> None:
    """Every container, image, volume and network labelled with this installation (tests, benchmarks)."""
    for container in containers.listed():
        containers.stop_and_remove(container.id, timeout=0)
    remove_instance_images(force=True)
    for app_id in pins.held_app_ids():  # pulled images carry no label of ours: their hold tags do
        pins.let_go_all(app_id)
    image_removal.remove_set_aside(wait=SET_ASIDE_WAIT)  # other installations' builds end by then
    for volume in daemon.client().volumes.list(filters={"label": instance_label()}):
        volume.remove(force=True)
    networks.remove_app_networks()


def remove_instance_images(force: bool = False) -> None:
    """This installation's builds; with `force` even those a container still uses."""
    image_removal.remove_images(daemon.client().api.images(filters={"label": instance_label()}, quiet=True),
                                force=force)

"""Everything of this installation removed from Docker at once (tests, benchmarks)."""
from django.conf import settings

from deployments.dockerd import containers, daemon, image_removal, networks, pins
from deployments.dockerd.values import LABEL_INSTANCE

SET_ASIDE_WAIT = 300  # seconds


def remove_instance_resources() -> None:
    """Every container, image, volume and network labelled with this installation (tests, benchmarks)."""
    for container in containers.listed():
        containers.stop_and_remove(container.id, timeout=0)
    label = f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"
    image_removal.remove_images(daemon.client().api.images(filters={"label": label}, quiet=True), force=True)
    for app_id in pins.held_app_ids():  # pulled images carry no label of ours: their hold tags do
        pins.let_go_all(app_id)
    image_removal.remove_set_aside(wait=SET_ASIDE_WAIT)  # other installations' builds end by then
    for volume in daemon.client().volumes.list(filters={"label": label}):
        volume.remove(force=True)
    networks.remove_app_networks()

"""The Docker volumes behind a Compose app's named volumes: one per app id and name, kept across
deploys, removed with the app."""
from typing import Iterable

import docker.errors

from deployments.dockerd import daemon
from deployments.dockerd.values import LABEL_APP, LABEL_APP_ID, instance_label, instance_labels, name_prefix


def ensure_volume(app_name: str, app_id: int, volume: str) -> str:
    """The Docker volume behind a compose file's named volume: sy-APP_ID_NAME, labelled with the
    app's id, created on first use. It outlives every container: deploys, redeploys and rollbacks
    keep it. The id is in its name and label, so an app created later under a deleted app's name
    starts with empty volumes, never with the other's data."""
    name = f"{name_prefix()}-{app_name}_{app_id}_{volume}"
    try:
        found = daemon.client().volumes.get(name)
    except docker.errors.NotFound:
        daemon.client().volumes.create(name, labels=instance_labels(**{LABEL_APP: app_name, LABEL_APP_ID: str(app_id)}))
        return name
    if (found.attrs.get("Labels") or {}).get(LABEL_APP_ID) != str(app_id):
        raise daemon.RuntimeFailure(f"the Docker volume {name} exists and is not this app's: remove or rename it")
    return name


def remove_app_volumes(app_id: int) -> None:
    """A deleted app's volumes (its data goes with it); one still in use stays for reconcile."""
    remove_orphan_volumes(keep=(), only=app_id)


def remove_orphan_volumes(keep: Iterable[int], only: int | None = None) -> list[str]:
    """This installation's app volumes whose app (by id) is not in `keep`; returns their names."""
    label = [instance_label(), LABEL_APP_ID]
    kept, removed = {str(i) for i in keep}, []
    for volume in daemon.client().volumes.list(filters={"label": label}):
        owner = (volume.attrs.get("Labels") or {}).get(LABEL_APP_ID)
        if owner in kept or (only is not None and owner != str(only)):
            continue
        try:
            volume.remove(force=True)
            removed.append(volume.name)
        except docker.errors.APIError:
            pass  # still in use by a container being removed: the next run takes it
    return removed

"""A release's files volume: the read-only copies of repository files, secrets and configs that a
Compose release mounts (compose/project.py FileMount), one Docker volume per deployment, never a
path of the host that a user's value names.

The volume is filled before any container uses it: a container is created (never started) with
the volume mounted, and the files are put into it as a tar (Docker extracts it, owners and modes
as the tar says); then each file or directory is bind-mounted read-only from the volume's own
directory into the containers that mount it. (Docker 26's volume subpaths, API 1.45, would do the
same; this Docker, 20.10, has none.) Each entry of the volume sits at its top level, under a name
made of its content's hash, and nothing in the volume is a symlink the daemon could follow
(engine/release_files.py builds the tar), so a bind's source is always a file of that volume.

A files volume is removed once no container mounts any of its files and its deployment no
longer runs (remove_unused: after a release is retired, undone, and by reconcile), and with its
app (it carries the app's id, as named volumes do: volumes.py)."""
from typing import BinaryIO, Iterable

import docker.errors

from deployments.dockerd import daemon
from deployments.dockerd.values import (LABEL_APP, LABEL_APP_ID, LABEL_DEPLOYMENT, instance_label, instance_labels,
                                        name_prefix)

LABEL_FILES_OF = "switchyard.files-of"  # on a files volume: the deployment whose files it holds
FILLER_PATH = "/switchyard-files"


def volume_name(app_name: str, app_id: int, deployment_id: int) -> str:
    """sy-APP_ID-files-DEPLOYMENT: a named volume is sy-APP_ID_NAME, so no compose file's volume
    name can meet it."""
    return f"{name_prefix()}-{app_name}_{app_id}-files-{deployment_id}"


def fill(*, app_name: str, app_id: int, deployment_id: int, image: str, archive: BinaryIO) -> str:
    """The deployment's files volume, created (or emptied of nothing: a retried start overwrites
    the same names) and filled with `archive`; returns its name."""
    name = volume_name(app_name, app_id, deployment_id)
    client = daemon.client()
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        client.volumes.create(name, labels=instance_labels(**{
            LABEL_APP: app_name, LABEL_APP_ID: str(app_id), LABEL_FILES_OF: str(deployment_id)}))
    filler = None
    try:
        filler = client.containers.create(
            image, name=f"{name_prefix()}-{app_name}_{deployment_id}-files", entrypoint=["/nonexistent"],
            network_mode="none", labels=instance_labels(**{LABEL_APP: app_name, LABEL_DEPLOYMENT: str(deployment_id)}),
            volumes={name: {"bind": FILLER_PATH, "mode": "rw,nocopy"}})
        if not filler.put_archive(FILLER_PATH, archive):
            raise daemon.RuntimeFailure(f"Docker could not put the release's files into {name}")
    except docker.errors.APIError as error:
        raise daemon.RuntimeFailure(f"Docker could not fill {name}: {error.explanation or error}") from error
    finally:
        if filler is not None:
            filler.remove(force=True, v=True)  # v: the anonymous volumes of its image's VOLUMEs
    return name


def source_directory(app_name: str, app_id: int, deployment_id: int) -> str:
    """Where the daemon keeps the volume's files: each bind mount's source is an entry of it."""
    name = volume_name(app_name, app_id, deployment_id)
    try:
        return daemon.client().api.inspect_volume(name)["Mountpoint"]
    except docker.errors.NotFound:
        raise daemon.RuntimeFailure(f"the release's files volume {name} is gone; deploy again") from None


def remove_unused(keep: Iterable[int], app_name: str | None = None) -> list[str]:
    """The files volumes (of one app, or all) that no container of the installation mounts
    (running or stopped: a stopped one may be started again), except those of the deployments in
    `keep` (one still starting has not started its containers yet). Returns the names removed."""
    kept = {str(deployment) for deployment in keep}
    label = [instance_label(), LABEL_FILES_OF]
    if app_name is not None:
        label.append(f"{LABEL_APP}={app_name}")
    client = daemon.client()
    found = [volume for volume in client.volumes.list(filters={"label": label})
             if (volume.attrs.get("Labels") or {}).get(LABEL_FILES_OF) not in kept]
    if not found:
        return []
    sources = _bind_sources()
    removed = []
    for volume in found:
        directory = volume.attrs.get("Mountpoint", "") + "/"
        if any(source.startswith(directory) for source in sources):
            continue
        try:
            volume.remove(force=True)
            removed.append(volume.name)
        except docker.errors.APIError:
            pass  # being filled or removed by another run: the next one takes it
    return removed


def _bind_sources() -> list[str]:
    listed = daemon.client().api.containers(all=True, filters={
        "label": [instance_label()]})
    return [mount.get("Source", "") for container in listed for mount in container.get("Mounts") or []
            if mount.get("Type") == "bind"]

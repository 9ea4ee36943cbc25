"""A release's own bridge network, beside its app's (networks.py): a Compose release whose web
service depends on stateless services (its chain: nginx → backend) runs them here, each under its
service name. During the overlap of two releases, the new web containers resolve `backend` to
the new release's backend only, the old ones to the old (each release network holds one
release's chain; the chain is on no other network). The web containers are on both networks
(HAProxy routes to their address on the app's network); the stateful services, kept across
releases, are connected to each release's network under their names too.

Same pool and same bridge-name prefix as the app networks: the egress rules (`<prefix>+`)
cover them, and Docker's isolation between bridges keeps other apps out. An app with a chain
holds up to three subnets during a deploy (its network, the old release's, the new one's)."""
import hashlib

import docker.errors

from deployments.dockerd import daemon, networks
from deployments.dockerd.values import LABEL_APP, LABEL_DEPLOYMENT, instance_label, instance_labels


def release_network_name(app_name: str, deployment: int) -> str:
    return f"{networks.network_name(app_name)}-r{deployment}"


def ensure_release_network(app_name: str, deployment: int) -> str:
    bridge = networks.bridge_prefix() + hashlib.sha1(f"{app_name}/{deployment}".encode()).hexdigest()[:8]
    return networks.ensure_network(
        release_network_name(app_name, deployment),
        labels=instance_labels(**{LABEL_APP: app_name, LABEL_DEPLOYMENT: str(deployment)}), bridge=bridge,
        found_by=_labels(app_name, deployment))


def connect(network: str, container_id: str, aliases: tuple[str, ...]) -> None:
    """`container_id` found on `network` by `aliases` (already connected: nothing to do)."""
    try:
        daemon.client().api.connect_container_to_network(container_id, network, aliases=list(aliases))
    except docker.errors.APIError as error:
        if "already exists" in str(error.explanation or error):
            return
        raise daemon.RuntimeFailure(f"Docker could not connect {container_id[:12]} to {network}: "
                                    f"{error.explanation or error}") from error


def remove_release_network(app_name: str, deployment: int) -> None:
    """Once the release is retired or undone: the containers still on it (kept stateful ones)
    disconnected, then the network removed. Gone already is fine."""
    for network in daemon.client().api.networks(filters={"label": _labels(app_name, deployment)}):
        _remove(network["Id"])


def remove_unowned(owned: set[int]) -> list[str]:
    """Reconcile: release networks of deployments that no longer run, serve or back one that does."""
    label = [instance_label(), LABEL_DEPLOYMENT]
    removed = []
    for network in daemon.client().api.networks(filters={"label": label}):
        deployment = network["Labels"].get(LABEL_DEPLOYMENT, "")
        if deployment.isdigit() and int(deployment) not in owned and _remove(network["Id"]):
            removed.append(network["Name"])
    return removed


def _labels(app_name: str, deployment: int) -> list[str]:
    return [instance_label(), f"{LABEL_APP}={app_name}",
            f"{LABEL_DEPLOYMENT}={deployment}"]


def _remove(network_id: str) -> bool:
    api = daemon.client().api
    try:
        for container_id in (api.inspect_network(network_id).get("Containers") or {}):
            try:
                api.disconnect_container_from_network(container_id, network_id, force=True)
            except docker.errors.APIError:
                pass  # gone meanwhile
        api.remove_network(network_id)
        return True
    except docker.errors.APIError:
        return False  # gone already, or a container was connected meanwhile: reconcile tries again

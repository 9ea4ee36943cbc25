"""Each app's own bridge network, its subnet from our pool, and the host interface names the egress
rules match."""
import hashlib
import ipaddress
from typing import Iterable

import docker
import docker.errors
from django.conf import settings

from deployments.dockerd import daemon
from deployments.dockerd.network_events import network_created
from deployments.dockerd.values import LABEL_APP, instance_label, instance_labels


def network_name(app_name: str) -> str:
    return f"{settings.SWITCHYARD['DOCKER_NETWORK']}-{app_name}"


def bridge_prefix() -> str:
    """The start of the host interface name of every app network of this installation: the egress
    rules match `<prefix>+`, so networks created after the rules are covered too."""
    return "sy" + hashlib.sha1(settings.SWITCHYARD["INSTANCE"].encode()).hexdigest()[:5]


def bridge_name(app_name: str) -> str:
    return bridge_prefix() + hashlib.sha1(app_name.encode()).hexdigest()[:8]  # 15 characters: IFNAMSIZ - 1


def instance_bridges() -> list[str]:
    """Host interfaces of this installation's networks (older ones are br-<id>, not prefixed)."""
    label = instance_label()
    return [(network.get("Options") or {}).get(BRIDGE_NAME_OPTION) or f"br-{network['Id'][:12]}"
            for network in daemon.client().api.networks(filters={"label": label})]


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def ensure_app_network(app_name: str) -> str:
    """The app's own bridge network, created on first use with a subnet from our pool.

    One network per app: Docker's isolation rules (DOCKER-ISOLATION chains) drop traffic
    between bridges, so an app's containers reach each other but no other app's; the host
    (HAProxy, the worker) routes to every bridge. Docker's default pools hold ~30 bridges,
    hence our own pool. Two workers may pick the same free subnet at once: Docker refuses
    the second (403), which then takes the next one. A network being created is not listed
    until it is complete, so a refused subnet counts as taken without being seen."""
    return ensure_network(network_name(app_name), labels=instance_labels(**{LABEL_APP: app_name}),
                          bridge=bridge_name(app_name), found_by=_network_label(app_name))


def ensure_network(name: str, *, labels: dict[str, str], bridge: str, found_by: list[str]) -> str:
    """A bridge network of this installation (an app's, or a release's: release_networks.py) with a
    subnet from our pool and a bridge name the egress rules match; found by the labels `found_by`."""
    refused: list[ipaddress.IPv4Network] = []
    for _ in range(NETWORK_ATTEMPTS):
        if any(n["Name"] == name for n in daemon.client().api.networks(filters={"label": found_by})):
            return name
        subnet = _free_subnet(refused)
        try:
            daemon.client().api.create_network(
                name, driver="bridge", check_duplicate=True, labels=labels, options={BRIDGE_NAME_OPTION: bridge},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))]))
            network_created.send(sender=None, bridge=bridge)
            return name
        except docker.errors.APIError as error:
            if error.status_code not in (403, 409):  # 403: subnet taken meanwhile, 409: same name
                raise daemon.RuntimeFailure(f"Docker could not create network {name}: {error.explanation or error}") from error
            refused.append(subnet)
    raise daemon.RuntimeFailure(f"Docker could not create network {name}: the subnet or name kept being taken")


NETWORK_ATTEMPTS = 10  # workers creating networks at the same moment each take the next subnet


def _network_label(app_name: str) -> list[str]:
    return [instance_label(), f"{LABEL_APP}={app_name}"]


def _free_subnet(refused: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first subnet of the pool that overlaps no Docker network, no route of this host
    (a subnet on top of the LAN would cut the host off from it) and none Docker just refused."""
    pool = ipaddress.IPv4Network(settings.SWITCHYARD["APP_SUBNETS"])
    taken = _docker_subnets() + _host_routes() + refused
    for subnet in pool.subnets(new_prefix=_subnet_prefix()):
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise daemon.RuntimeFailure(f"no free /{_subnet_prefix()} left in SWITCHYARD_APP_SUBNETS={pool}: "
                                "delete unused apps or give a larger range")


def _subnet_prefix() -> int:
    return settings.SWITCHYARD["APP_SUBNET_PREFIX"]


def _docker_subnets() -> list[ipaddress.IPv4Network]:
    subnets = []
    for network in daemon.client().api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = ipaddress.ip_network(config.get("Subnet") or "::/128", strict=False)
            if subnet.version == 4:
                subnets.append(subnet)
    return subnets


def _host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 routes of this host except the default one, from /proc/net/route (hex, little-endian)."""
    try:
        rows = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
    except OSError:
        return []
    routes = []
    for row in rows:
        destination, mask = (ipaddress.IPv4Address(bytes.fromhex(value)[::-1]) for value in (row[1], row[7]))
        if int(mask):
            routes.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return routes


def remove_app_networks(keep: Iterable[str] = ()) -> list[str]:
    """Remove this installation's networks except those of the apps in `keep` (reconcile,
    tests); a network that still has containers stays for a later call. Returns the names."""
    label = instance_label()
    kept = set(keep)
    return [network["Name"] for network in daemon.client().api.networks(filters={"label": label})
            if network["Labels"].get(LABEL_APP) not in kept and _remove_network(network["Id"])]


def remove_app_network(app_name: str) -> None:
    for network in daemon.client().api.networks(filters={"label": _network_label(app_name)}):
        _remove_network(network["Id"])


def _remove_network(network_id: str) -> bool:
    try:
        daemon.client().api.remove_network(network_id)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError:
        return False  # containers still attached

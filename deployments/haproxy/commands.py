"""The runtime API's commands for a routing table's server slots, as text: addresses and states,
a canary's weights, joined into lines the admin socket takes. Pure: apply.py sends them."""
from deployments.haproxy.config import PLACEHOLDER_ADDR, backup_slot_name, canary_slot_name, slot_name
from deployments.traffic.table import COLOURS, MAX_REPLICAS, Backend, RoutingTable, Server

MAP_BATCH_BYTES = 8 * 1024  # of commands per runtime-API line: well under HAProxy's 16 KiB buffer
SLOT_NAMES = {"servers": slot_name, "backups": backup_slot_name, "canaries": canary_slot_name}


def ready(backend: str, servers: tuple[Server, ...], kind: str = "servers") -> list[str]:
    """The first slots of a kind ("servers", "backups", "canaries") take these servers and start
    their health checks; the others are left as they are."""
    commands = []
    for index, server in enumerate(servers):
        name = f"{backend}/{SLOT_NAMES[kind](index)}"
        commands += [f"set server {name} addr {server.addr} port {server.port}", f"set server {name} state ready"]
    return commands


def armed(backend: str, count: int) -> list[str]:
    """The first `count` slots out of maintenance at the placeholder address (the loopback's port
    1, where nothing listens: each check fails at once, where an address that dropped packets
    would hold a check until its timeout). HAProxy finds them DOWN and checks them every
    `downinter` from then on. No request reaches them: their backend is not the one the map
    routes to."""
    return ready(backend, (Server(*PLACEHOLDER_ADDR),) * count)


def maintenance(backend: str, count: int, kind: str = "servers") -> list[str]:
    """The first `count` slots of a kind get no new requests; those in flight carry on."""
    return [f"set server {backend}/{SLOT_NAMES[kind](index)} state maint" for index in range(count)]


def canary(backend_name: str, backend: Backend) -> list[str]:
    """Weights first, then the c slots' addresses and state, so that no request meets a new
    server at the weight of an old one."""
    old_weight, new_weight = backend.weights()
    commands = [f"set server {backend_name}/{slot_name(i)} weight {old_weight}" for i in range(len(backend.servers))]
    commands += [f"set server {backend_name}/{canary_slot_name(i)} weight {new_weight or 1}"
                 for i in range(len(backend.canaries))]
    return commands + _every_slot(backend_name, backend.canaries if backend.canary_percent else (), canary_slot_name)


def every_server(table: RoutingTable) -> list[str]:
    """Every slot of every app's backends as the table has it: taken, or in maintenance."""
    commands = []
    for route in table.apps:
        for colour in COLOURS:
            backend = route.backends[colour]
            if route.canary:
                commands += canary(route.backend(colour), backend)
            for servers, name in ((backend.servers, slot_name), (backend.backups, backup_slot_name)):
                commands += _every_slot(route.backend(colour), servers, name)
    return commands


def _every_slot(backend: str, servers: tuple[Server, ...], name) -> list[str]:
    commands = []
    for index in range(MAX_REPLICAS):
        server = f"{backend}/{name(index)}"
        if index < len(servers):
            commands += [f"set server {server} addr {servers[index].addr} port {servers[index].port}",
                         f"set server {server} state ready"]
        else:
            commands.append(f"set server {server} state maint")
    return commands


def joined_in_batches(commands: list[str]) -> list[str]:
    """Commands joined with "; " into lines of at most MAP_BATCH_BYTES (one longer command alone):
    by bytes, not by count, as hosts are up to 253 characters."""
    lines, batch, size = [], [], 0
    for command in commands:
        if batch and size + len(command) + 2 > MAP_BATCH_BYTES:
            lines.append("; ".join(batch))
            batch, size = [], 0
        batch.append(command)
        size += len(command.encode()) + 2
    return lines + (["; ".join(batch)] if batch else [])

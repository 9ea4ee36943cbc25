"""The web service's chain (Role.CHAIN: the stateless services it depends on, nginx → backend):
part of the release, deployed blue/green with the web service on the release's own network
(dockerd/release_networks.py), where each finds the others by service name.

- start: the release's network is created, the stateful services (kept or new) joined to it
  under their names, then the chain's services start in dependency order, before the web
  service's new containers (which join it too) and beside the old release's chain, which its
  own network keeps apart: the new front resolves `backend` to the new backend only.
- verify: the web service is verified through its chain (its health check crosses it).
- drain: once the old web release is retired, its chain stops and its network goes.
- a failure before the switch, or a rollback: the new chain and network are removed
  (Companions.undo, remove_network); the old chain never stopped serving the old release.
"""
from deployments.compose.project import Project, Role
from deployments.dockerd import release_networks
from deployments.engine.companions import Companions
from deployments.engine.phases.context import DeploymentContext


def applies(project: Project) -> bool:
    return bool(project.of_role(Role.CHAIN))


def network_of(ctx: DeploymentContext) -> str:
    """The release's network name ('' if it has no chain: it then uses the app's network alone)."""
    return release_networks.release_network_name(ctx.app.name, ctx.deployment.id) if applies(ctx.project) else ""


def start_chain(ctx: DeploymentContext) -> None:
    companions = ctx.companions
    if not companions.release_network:
        return
    release_networks.ensure_release_network(ctx.app.name, ctx.deployment.id)
    join_stateful(companions)
    for spec in ctx.project.of_role(Role.CHAIN):
        companions.start_service(spec)


def join_stateful(companions: Companions) -> None:
    """The stateful services, kept or just started, found under their names on the release's network."""
    for spec in companions.project.of_role(Role.STATEFUL):
        for container in companions.current[spec.name].containers:
            release_networks.connect(companions.release_network, container.id, (spec.name, *spec.aliases))


def retire_previous_chain(ctx: DeploymentContext) -> None:
    """After the old web release is retired: its chain stops, then its network goes."""
    previous = ctx.previous
    if previous is None:
        return
    for old in previous.services:
        if old.role == Role.CHAIN.value:
            ctx.companions.retire(old, "the previous release's chain: stopping it")
    release_networks.remove_release_network(ctx.app.name, previous.id)


def remove_network(ctx: DeploymentContext) -> None:
    """This release's network, once what ran on it is removed (a failure, a rollback)."""
    release_networks.remove_release_network(ctx.app.name, ctx.deployment.id)

"""App containers: started on their app's network under their limits, inspected, stopped, removed,
listed. Their names and labels are made here, so reconcile and the tests know whose each one is."""
import datetime
from dataclasses import dataclass

import docker.errors
from docker.types import Mount
from django.conf import settings

from deployments.dockerd import daemon, networks, release_networks
from deployments.dockerd.values import (LABEL_APP, LABEL_DEPLOYMENT, LABEL_SERVICE, Container, ListedContainer,
                                        instance_label, instance_labels, name_prefix)


@dataclass(frozen=True)
class ContainerLimits:
    """What one app container may use; the pipeline fills it from the app's fields."""
    memory_mb: int
    cpus: float
    pids: int
    capabilities: tuple[str, ...] = ()  # given back; every other capability is dropped

    @classmethod
    def defaults(cls) -> "ContainerLimits":
        """What a new app gets (for containers started outside a deployment: benchmarks, tests)."""
        config = settings.SWITCHYARD
        return cls(memory_mb=config["DEFAULT_MEMORY_MB"], cpus=config["DEFAULT_CPUS"], pids=config["DEFAULT_PIDS"])

    def host_config(self) -> dict:
        memory = f"{self.memory_mb}m"
        # memswap = memory: no swap on top, so the limit cannot be escaped by swapping.
        return {"mem_limit": memory, "memswap_limit": memory, "nano_cpus": int(self.cpus * 1e9),
                "pids_limit": self.pids, "security_opt": ["no-new-privileges"],
                "cap_drop": ["ALL"], "cap_add": list(self.capabilities)}


@dataclass(frozen=True)
class RunOptions:
    """What a Compose service asks of its containers beyond image, environment and limits."""
    command: tuple[str, ...] | str | None = None
    entrypoint: tuple[str, ...] | str | None = None
    working_dir: str = ""
    user: str = ""
    volumes: tuple[tuple[str, str, bool], ...] = ()  # (Docker volume, path, read-only)
    aliases: tuple[str, ...] = ()  # names other services find it by on the app's network
    healthcheck: dict | None = None  # Docker's form (compose/project.py HealthCheck.docker())
    stop_signal: str = ""
    read_only: bool = False
    tty: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (an entry of a release's files volume, path): read-only
    scratch: tuple[str, ...] = ()  # paths of anonymous volumes, removed with the container
    runtime: str = ""  # HostConfig.Runtime: one the administrator allows (SWITCHYARD_ALLOWED_RUNTIMES)
    hostname: str = ""
    stdin_open: bool = False
    release_network: str = ""  # also found there by its aliases (release_networks.py)
    release_only: bool = False  # on the release's network only, not the app's (a web service's chain)

    def create_arguments(self, network: str) -> dict:
        arguments = {"command": _listed(self.command), "entrypoint": _listed(self.entrypoint),
                     "working_dir": self.working_dir or None, "user": self.user or None,
                     "healthcheck": self.healthcheck, "stop_signal": self.stop_signal or None,
                     "read_only": self.read_only, "tty": self.tty, "runtime": self.runtime or None,
                     "hostname": self.hostname or None, "stdin_open": self.stdin_open,
                     "volumes": {volume: {"bind": path, "mode": "ro" if read_only else "rw"}
                                 for volume, path, read_only in self.volumes} or None,
                     "mounts": [*(Mount(path, source, type="bind", read_only=True) for source, path in self.files),
                                *(Mount(path, None, type="volume") for path in self.scratch)] or None}
        if self.aliases:
            arguments["networking_config"] = {network: daemon.client().api.create_endpoint_config(aliases=list(self.aliases))}
        return {key: value for key, value in arguments.items() if value is not None}


def _listed(command):
    return list(command) if isinstance(command, tuple) else command


@dataclass(frozen=True)
class ContainerState:
    running: bool
    exit_code: int | None
    status: str
    restarts: int = 0
    stopped_seconds: float = 0.0  # how long ago it stopped (0 while it runs)
    health: str = ""  # Docker's healthcheck: starting, healthy, unhealthy; "" without one


def container_name(app_name: str, deployment: str, index: int) -> str:
    """sy-APP-DEPLOYMENT-N: unique per installation's deployment and slot (N from 1)."""
    return f"{name_prefix()}-{app_name}-{deployment}-{index + 1}"


def start_release_container(app_name: str, deployment: str, index: int, image: str, port: int,
                            env: dict[str, str], limits: ContainerLimits,
                            options: RunOptions = RunOptions(), fixed_name: str = "") -> Container:
    """Slot `index` of a deployment's release, named and labelled so that reconcile and
    the tests know whose it is (a compose file's container_name: sy-APP-NAME)."""
    name = fixed_container_name(app_name, fixed_name) if fixed_name else container_name(app_name, deployment, index)
    return start_container(name, image, port, env, {LABEL_APP: app_name, LABEL_DEPLOYMENT: deployment}, limits,
                           options)


def service_container_name(app_name: str, deployment: str, service: str, index: int, fixed: str = "") -> str:
    """sy-APP_DEPLOYMENT-SERVICE-N, or sy-APP_NAME for a compose file's container_name. App names
    have no "_", so what comes before the first "_" is the app: no app can take (or block) a name
    another app's containers need. (Release containers, sy-APP-DEPLOYMENT-N, have no "_" at all.)"""
    return (fixed_container_name(app_name, fixed) if fixed
            else f"{name_prefix()}-{app_name}_{deployment}-{service}-{index + 1}")


def fixed_container_name(app_name: str, name: str) -> str:
    return f"{name_prefix()}-{app_name}_{name}"


def start_service_container(app_name: str, deployment: str, service: str, index: int, image: str,
                            env: dict[str, str], limits: ContainerLimits, options: RunOptions,
                            fixed_name: str = "") -> Container:
    """A container of a Compose app's service other than the web one (no port is routed to it)."""
    name = service_container_name(app_name, deployment, service, index, fixed_name)
    labels = {LABEL_APP: app_name, LABEL_DEPLOYMENT: deployment, LABEL_SERVICE: service}
    return start_container(name, image, 0, env, labels, limits, options)


def start_container(name: str, image: str, port: int, env: dict[str, str], labels: dict[str, str],
                    limits: ContainerLimits, options: RunOptions = RunOptions()) -> Container:
    """Run a container on its app's network, confined by `limits`, no restart policy yet
    (see enable_restarts)."""
    network = options.release_network if options.release_only else networks.ensure_app_network(labels[LABEL_APP])
    user_labels = dict(options.labels)
    try:
        # create + start, not run(): run() pulls an image it does not find, and ours are
        # only ever built here; a missing one is an error to report, not a download.
        container = daemon.client().containers.create(
            image, name=name, environment=env, labels={**user_labels, **instance_labels(**labels)},
            network=network, init=True, log_config={"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
            **limits.host_config(), **options.create_arguments(network),
        )
        if options.release_network and not options.release_only:
            release_networks.connect(options.release_network, container.id, options.aliases)
        container.start()
    except docker.errors.APIError as error:
        raise daemon.RuntimeFailure(f"Docker could not start {name}: {error.explanation or error}") from error
    return _running(container, port)


def enable_restarts(container_id: str, policy: str = "unless-stopped") -> None:
    """Once verified, a release that crashes later is restarted by Docker. Not before: a
    crash during verification must stay visible as an exit code, not a restart loop."""
    if policy != "no":
        daemon.client().api.update_container(container_id, restart_policy=docker_policy(policy))


def docker_policy(policy: str) -> dict:
    """Docker's RestartPolicy for "no", "always", "unless-stopped", "on-failure" or "on-failure:N"."""
    name, _, attempts = policy.partition(":")
    return {"Name": name, "MaximumRetryCount": int(attempts)} if attempts else {"Name": name}


def state(container_id: str) -> ContainerState:
    try:
        info = daemon.client().api.inspect_container(container_id)
    except docker.errors.NotFound:
        return ContainerState(running=False, exit_code=None, status="removed")
    attrs = info["State"]
    return ContainerState(running=bool(attrs["Running"]), exit_code=attrs.get("ExitCode"), status=attrs["Status"],
                          restarts=int(info.get("RestartCount") or 0),
                          stopped_seconds=0.0 if attrs["Running"] else _seconds_since(attrs.get("FinishedAt")),
                          health=(attrs.get("Health") or {}).get("Status", ""))


def _seconds_since(docker_time: str | None) -> float:
    """Docker's RFC 3339 time with nanoseconds ("0001-01-01T00:00:00Z" when never): seconds ago."""
    if not docker_time or docker_time.startswith("0001-"):
        return float("inf")
    stamp = datetime.datetime.fromisoformat(docker_time[:26].rstrip("Z") + "+00:00")
    return (datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()


def stop(container_id: str, timeout: int) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; the container is kept."""
    try:
        daemon.client().api.stop(container_id, timeout=timeout)
    except docker.errors.NotFound:
        pass


def set_aside(container: Container, deployment: str) -> None:
    """A stopped container that a new one with the same fixed name replaces: renamed, so the new one
    can take the name, and kept, so a failure can bring it back (see bring_back)."""
    try:
        daemon.client().api.rename(container.id, f"{container.name}-replaced-by-{deployment}")
    except docker.errors.NotFound:
        pass


def bring_back(container: Container) -> Container:
    """Undo set_aside (the name is free again once the new container is removed), then start it."""
    try:
        found = daemon.client().containers.get(container.id)
        if found.name != container.name:
            found.rename(container.name)
    except docker.errors.APIError as error:
        raise daemon.RuntimeFailure(f"Docker could not give {container.name} its name back: {error.explanation or error}")
    return restart(container)


def restart(container: Container) -> Container:
    """Start a stopped container again; its address may change, so it is read anew."""
    found = daemon.client().containers.get(container.id)
    found.start()
    return _running(found, container.port)


def address(container_id: str) -> str:
    """The container's current IP on its app's network ('' if it has none)."""
    try:
        return _running(daemon.client().containers.get(container_id), 0).ip
    except docker.errors.NotFound:
        return ""


def _running(container, port: int) -> Container:
    container.reload()
    ip = _app_network_ip(container.labels, container.attrs["NetworkSettings"]["Networks"])
    return Container(id=container.id, name=container.name, ip=ip, port=port)


def _app_network_ip(labels: dict[str, str], attached: dict[str, dict]) -> str:
    # A container started before networks were per app sits on the old shared network
    # until its app's next deploy replaces it.
    app_network = networks.network_name(labels.get(LABEL_APP, ""))
    found = attached.get(app_network) or attached.get(settings.SWITCHYARD["DOCKER_NETWORK"]) or {}
    return found.get("IPAddress", "")


def stop_and_remove(container_id: str, timeout: int) -> None:
    """SIGTERM, wait up to `timeout` seconds, SIGKILL; then remove. Gone already is fine."""
    try:
        daemon.client().api.stop(container_id, timeout=timeout)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError:
        pass  # removal below forces it
    try:
        daemon.client().api.remove_container(container_id, force=True, v=True)  # v: its anonymous volumes
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code != 409:  # 409: another process is removing it already
            raise


def listed(app_name: str | None = None) -> list[ListedContainer]:
    """This installation's containers (optionally one app's), running or not."""
    filters = [instance_label()]
    if app_name:
        filters.append(f"{LABEL_APP}={app_name}")
    found = daemon.client().api.containers(all=True, filters={"label": filters})
    return [ListedContainer(id=c["Id"], name=c["Names"][0].lstrip("/"), app=c["Labels"].get(LABEL_APP, ""),
                            deployment=c["Labels"].get(LABEL_DEPLOYMENT, ""), state=c["State"],
                            ip=_app_network_ip(c["Labels"], (c.get("NetworkSettings") or {}).get("Networks") or {}))
            for c in found]

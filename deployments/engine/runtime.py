"""Docker: build images, run and stop app containers. The only module that imports `docker`.

Everything created carries the labels `switchyard.instance` (this installation),
`switchyard.app` and, for containers, `switchyard.deployment`, so reconcile and tests can
find exactly what is theirs.
"""
import datetime
import hashlib
import ipaddress
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO, Callable, Iterable, Iterator, TypeVar

import docker
import docker.errors
from docker.types.daemon import CancellableStream
from django.conf import settings
import requests

from deployments.containers import Container, ListedContainer
from deployments.engine import buildcgroup, buildimages

LABEL_INSTANCE = "switchyard.instance"
LABEL_APP = "switchyard.app"
LABEL_DEPLOYMENT = "switchyard.deployment"
LABEL_SERVICE = "switchyard.service"
LABEL_APP_ID = "switchyard.app-id"  # on volumes: a new app of a deleted one's name never gets its data

T = TypeVar("T")


class BuildFailed(Exception):
    """The Dockerfile did not build; the message is Docker's error line."""


class BuildStopped(Exception):
    """The build was stopped on request (should_stop returned True)."""


class RuntimeFailure(Exception):
    """Docker refused to create or start a container, or is not reachable."""


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

    def create_arguments(self, network: str) -> dict:
        arguments = {"command": _listed(self.command), "entrypoint": _listed(self.entrypoint),
                     "working_dir": self.working_dir or None, "user": self.user or None,
                     "healthcheck": self.healthcheck, "stop_signal": self.stop_signal or None,
                     "read_only": self.read_only, "tty": self.tty,
                     "volumes": {volume: {"bind": path, "mode": "ro" if read_only else "rw"}
                                 for volume, path, read_only in self.volumes} or None}
        if self.aliases:
            arguments["networking_config"] = {network: client().api.create_endpoint_config(aliases=list(self.aliases))}
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


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    return docker.from_env(timeout=60)


class _LogsOnlyClient(docker.APIClient):
    def _check_is_tty(self, container) -> bool:
        """docker-py inspects a container before reading its logs, to learn whether it has a TTY;
        the logs proxy refuses inspect (it shows the environment). Ours never have one."""
        return False


@lru_cache(maxsize=1)
def logs_client() -> docker.APIClient:
    """What the panel follows live output through. In the compose stack the web service has no
    Docker socket: SWITCHYARD_DOCKER_LOGS_URL points at a proxy that lets only GET .../logs pass."""
    url = settings.SWITCHYARD["DOCKER_LOGS_URL"]
    return _LogsOnlyClient(base_url=url, timeout=60) if url else client().api


def instance_labels(**extra: str) -> dict[str, str]:
    return {LABEL_INSTANCE: settings.SWITCHYARD["INSTANCE"], **extra}


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
    label = f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"
    return [(network.get("Options") or {}).get(BRIDGE_NAME_OPTION) or f"br-{network['Id'][:12]}"
            for network in client().api.networks(filters={"label": label})]


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def ensure_app_network(app_name: str) -> str:
    """The app's own bridge network, created on first use with a subnet from our pool.

    One network per app: Docker's isolation rules (DOCKER-ISOLATION chains) drop traffic
    between bridges, so an app's containers reach each other but no other app's; the host
    (HAProxy, the worker) routes to every bridge. Docker's default pools hold ~30 bridges,
    hence our own pool. Two workers may pick the same free subnet at once: Docker refuses
    the second (403), which then takes the next one. A network being created is not listed
    until it is complete, so a refused subnet counts as taken without being seen."""
    name = network_name(app_name)
    refused: list[ipaddress.IPv4Network] = []
    for _ in range(NETWORK_ATTEMPTS):
        if any(n["Name"] == name for n in client().api.networks(filters={"label": _network_label(app_name)})):
            return name
        subnet = _free_subnet(refused)
        try:
            client().api.create_network(
                name, driver="bridge", check_duplicate=True, labels=instance_labels(**{LABEL_APP: app_name}),
                options={BRIDGE_NAME_OPTION: bridge_name(app_name)},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))]))
            return name
        except docker.errors.APIError as error:
            if error.status_code not in (403, 409):  # 403: subnet taken meanwhile, 409: same name
                raise RuntimeFailure(f"Docker could not create network {name}: {error.explanation or error}") from error
            refused.append(subnet)
    raise RuntimeFailure(f"Docker could not create network {name}: the subnet or name kept being taken")


NETWORK_ATTEMPTS = 10  # workers creating networks at the same moment each take the next subnet


def _network_label(app_name: str) -> list[str]:
    return [f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}", f"{LABEL_APP}={app_name}"]


def _free_subnet(refused: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first subnet of the pool that overlaps no Docker network, no route of this host
    (a subnet on top of the LAN would cut the host off from it) and none Docker just refused."""
    pool = ipaddress.IPv4Network(settings.SWITCHYARD["APP_SUBNETS"])
    taken = _docker_subnets() + _host_routes() + refused
    for subnet in pool.subnets(new_prefix=_subnet_prefix()):
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeFailure(f"no free /{_subnet_prefix()} left in SWITCHYARD_APP_SUBNETS={pool}: "
                         "delete unused apps or give a larger range")


def _subnet_prefix() -> int:
    return settings.SWITCHYARD["APP_SUBNET_PREFIX"]


def _docker_subnets() -> list[ipaddress.IPv4Network]:
    subnets = []
    for network in client().api.networks():
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
    label = f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"
    kept = set(keep)
    return [network["Name"] for network in client().api.networks(filters={"label": label})
            if network["Labels"].get(LABEL_APP) not in kept and _remove_network(network["Id"])]


def remove_app_network(app_name: str) -> None:
    for network in client().api.networks(filters={"label": _network_label(app_name)}):
        _remove_network(network["Id"])


def _remove_network(network_id: str) -> bool:
    try:
        client().api.remove_network(network_id)
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError:
        return False  # containers still attached


def build_image(context_tar: BinaryIO, tag: str, dockerfile: str, labels: dict[str, str],
                on_line: Callable[[str], None], should_stop: Callable[[], bool] = lambda: False,
                timeout: int | None = None, build_args: dict[str, str] | None = None, target: str = "") -> str:
    """Build from a tar of the source (a file, streamed to dockerd as it is read: never whole in
    memory); every output line goes to on_line. Returns the image id.

    RUN steps get the build limits (memory without swap, at most BUILD_CPUS, half the CPU weight
    of an app, at most BUILD_PIDS processes in all: engine/buildcgroup.py).
    To stop a build, on request or after `timeout` seconds (default BUILD_TIMEOUT), a
    watcher shuts the build's connection down; dockerd cancels a build whose client went
    away (its RUN step's container is killed and removed). docker-py sends the build with
    no HTTP timeout at all, so the watcher is the only deadline there is."""
    timeout = timeout or settings.SWITCHYARD["BUILD_TIMEOUT"]
    stop_now = _Deadline(timeout, should_stop)
    # RUN steps run on the app's own network: under the egress rules like its containers.
    network = ensure_app_network(labels[LABEL_APP])
    api = _BuildClient(**docker.utils.kwargs_from_env())
    try:
        with buildcgroup.BuildCgroup(settings.SWITCHYARD["INSTANCE"], settings.SWITCHYARD["BUILD_PIDS"],
                                     cgroup_driver()) as cgroup:
            if cgroup.problem:
                on_line(f"(no process limit for this build's RUN steps: cannot make its cgroup: {cgroup.problem})")
            api.cgroup_parent = cgroup.path
            stream = api.build(
                fileobj=context_tar, custom_context=True, tag=tag, dockerfile=dockerfile,
                labels=instance_labels(**labels), rm=True, forcerm=True, decode=True,
                container_limits=_build_limits(), buildargs=build_args or None, target=target or None,
                network_mode=network,
            )
            with _StopWatcher(stop_now, stream.close) as watcher:
                image_id = _unless_stopped(lambda: _follow_build(stream, on_line), watcher)
    finally:
        api.close()
    if watcher.fired and stop_now.expired:
        raise BuildFailed(f"timed out after {timeout} s")
    if watcher.fired:
        raise BuildStopped()
    return image_id or client().images.get(tag).id


@lru_cache(maxsize=1)
def cgroup_driver() -> str:
    """Docker's cgroup driver ("cgroupfs" or "systemd"): the form a cgroup parent takes."""
    return client().info().get("CgroupDriver", "cgroupfs")


def sweep_build_cgroups() -> list[str]:
    """Remove the build parents a killed worker left (engine/buildcgroup.py); returns their names."""
    return buildcgroup.sweep(settings.SWITCHYARD["INSTANCE"], cgroup_driver())


def _build_limits() -> dict[str, int]:
    # The classic builder (what dockerd 20.10 uses for API builds) applies these to each RUN
    # step's container. cpushares 512: under contention a build gets half the CPU of an app.
    memory = settings.SWITCHYARD["BUILD_MEMORY_MB"] * 1024 * 1024
    return {"memory": memory, "memswap": memory, "cpushares": 512}


CPU_PERIOD = 100_000  # µs: the CFS period; the quota is BUILD_CPUS of it


class _CancellableClient(docker.APIClient):
    """docker-py returns a build's or a pull's output as a bare generator; this returns it as a
    CancellableStream (as it already does for logs), whose close() ends it from any thread."""

    def _stream_helper(self, response, decode=False):
        return CancellableStream(super()._stream_helper(response, decode=decode), response)


class _BuildClient(_CancellableClient):
    """Also sends what docker-py's build() does not pass on: the CPU ceiling of RUN steps (the
    API's cpuperiod and cpuquota) and their cgroup parent (cgroupparent)."""
    cgroup_parent = ""

    def _post(self, url, **kwargs):
        if url.endswith("/build"):
            quota = int(settings.SWITCHYARD["BUILD_CPUS"] * CPU_PERIOD)
            kwargs["params"] = {**kwargs.get("params", {}), "cpuperiod": CPU_PERIOD, "cpuquota": quota}
            if self.cgroup_parent:
                kwargs["params"]["cgroupparent"] = self.cgroup_parent
        return super()._post(url, **kwargs)


def _follow_build(stream, on_line: Callable[[str], None]) -> str | None:
    image_id = None
    for chunk in stream:
        if "error" in chunk:
            raise BuildFailed(chunk["error"].strip())
        for line in chunk.get("stream", "").splitlines():
            if line.strip():
                on_line(line.rstrip())
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
    return image_id


class _Deadline:
    """A _StopWatcher's should_stop: true once `seconds` passed (then `expired`) or `asked()` is."""

    def __init__(self, seconds: float, asked: Callable[[], bool]) -> None:
        self._at, self._asked, self.expired = time.monotonic() + seconds, asked, False

    def __call__(self) -> bool:
        self.expired = time.monotonic() >= self._at
        return self.expired or self._asked()


class _StopWatcher:
    """While in its `with` block, polls should_stop() in a thread and calls stop() once
    when it turns true; `fired` tells afterwards whether it did."""

    def __init__(self, should_stop: Callable[[], bool], stop: Callable[[], None], interval: float = 0.3) -> None:
        self.fired = False
        self._should_stop, self._stop_action, self._interval = should_stop, stop, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "_StopWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            if self._should_stop():
                self.fired = True
                self._stop_action()
                return


def _unless_stopped(read: Callable[[], T], watcher: _StopWatcher) -> T | None:
    """read()'s answer, or None if it raised because the watcher closed its stream: reading a
    stream shut from another thread ends in whatever the layer below makes of it (end of
    stream, a reset socket, a JSON fragment cut in half), and that is the stop, not a failure."""
    try:
        return read()
    except Exception:
        if watcher.fired:
            return None
        raise


def container_name(app_name: str, deployment: str, index: int) -> str:
    """sy-APP-DEPLOYMENT-N: unique per installation's deployment and slot (N from 1)."""
    return f"sy-{app_name}-{deployment}-{index + 1}"


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
    return fixed_container_name(app_name, fixed) if fixed else f"sy-{app_name}_{deployment}-{service}-{index + 1}"


def fixed_container_name(app_name: str, name: str) -> str:
    return f"sy-{app_name}_{name}"


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
    network = ensure_app_network(labels[LABEL_APP])
    user_labels = dict(options.labels)
    try:
        # create + start, not run(): run() pulls an image it does not find, and ours are
        # only ever built here; a missing one is an error to report, not a download.
        container = client().containers.create(
            image, name=name, environment=env, labels={**user_labels, **instance_labels(**labels)},
            network=network, init=True, log_config={"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
            **limits.host_config(), **options.create_arguments(network),
        )
        container.start()
    except docker.errors.APIError as error:
        raise RuntimeFailure(f"Docker could not start {name}: {error.explanation or error}") from error
    return _running(container, port)


@dataclass(frozen=True)
class OneOff:
    """How a one-off container (a release command) ended."""
    exit_code: int | None  # None: stopped before it ended
    timed_out: bool = False
    stopped: bool = False  # on request (the deployment was cancelled)


def run_once(name: str, image: str, env: dict[str, str], labels: dict[str, str], limits: ContainerLimits,
             options: RunOptions, on_line: Callable[[str], None], timeout: int,
             should_stop: Callable[[], bool] = lambda: False) -> OneOff:
    """Run a container to its end on its app's network, confined like the app's, every output
    line to on_line; killed after `timeout` seconds or when should_stop() turns true. The
    container is removed in every case."""
    network = ensure_app_network(labels[LABEL_APP])
    try:
        container = client().containers.create(
            image, name=name, environment=env, labels=instance_labels(**labels), network=network, init=True,
            **limits.host_config(), **options.create_arguments(network))
    except docker.errors.APIError as error:
        raise RuntimeFailure(f"Docker could not create {name}: {error.explanation or error}") from error
    stop_now = _Deadline(timeout, should_stop)
    try:
        container.start()
        with _StopWatcher(stop_now, lambda: _kill(container)) as watcher:
            for line in _lines(container.logs(stream=True, follow=True)):
                on_line(line)
            exit_code = container.wait(timeout=30).get("StatusCode")
    except docker.errors.APIError as error:
        raise RuntimeFailure(f"Docker could not run {name}: {error.explanation or error}") from error
    finally:
        stop_and_remove(container.id, timeout=0)
    if watcher.fired:
        return OneOff(None, timed_out=stop_now.expired, stopped=not stop_now.expired)
    return OneOff(exit_code)


def _kill(container) -> None:
    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it ended meanwhile


MAX_PENDING_LINE = 64 * 1024  # bytes of a line without its newline yet kept while following output


def _split(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Complete lines of pending + chunk, and what is left of a line not ended yet. That rest is
    bounded: output that never writes a newline would otherwise grow it without end; past
    MAX_PENDING_LINE it goes out as a line of its own, cut, saying so."""
    *complete, pending = (pending + chunk).split(b"\n")
    lines = [line.decode(errors="replace").rstrip("\r") for line in complete]
    if len(pending) > MAX_PENDING_LINE:
        lines.append(pending[:MAX_PENDING_LINE].decode(errors="replace") +
                     f" [line cut: {len(pending) - MAX_PENDING_LINE:,} more bytes without a newline]")
        pending = b""
    return lines, pending


def _lines(chunks) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        complete, pending = _split(pending, chunk)
        yield from complete
    if pending:
        yield pending.decode(errors="replace")


def enable_restarts(container_id: str, policy: str = "unless-stopped") -> None:
    """Once verified, a release that crashes later is restarted by Docker. Not before: a
    crash during verification must stay visible as an exit code, not a restart loop."""
    if policy != "no":
        client().api.update_container(container_id, restart_policy={"Name": policy})


def state(container_id: str) -> ContainerState:
    try:
        info = client().api.inspect_container(container_id)
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


def tail(container_id: str, lines: int = 20) -> str:
    try:
        output = client().api.logs(container_id, tail=lines, stdout=True, stderr=True)
    except docker.errors.NotFound:
        return ""
    return output.decode(errors="replace").rstrip()


class OutputStream:
    """A container's output, followed live, a line at a time. close() from another thread
    shuts the socket down, which ends a blocking read at once (docker's CancellableStream)."""

    def __init__(self, container_id: str, tail: int) -> None:
        self._pending = b""
        self._lines: list[str] = []
        try:
            self._chunks = logs_client().logs(container_id, stream=True, follow=True, tail=tail)
        except docker.errors.NotFound:
            self._chunks = None
        except (docker.errors.DockerException, requests.RequestException) as error:
            self._chunks = None
            self._lines = [f"(the output cannot be followed: {error})"]

    def next_line(self) -> str | None:
        """The next line, or None when the container stopped or the stream was closed."""
        while not self._lines:
            chunk = next(self._chunks, None) if self._chunks is not None else None
            if chunk is None:
                line, self._pending = self._pending, b""
                return line.decode(errors="replace") if line else None
            self._lines, self._pending = _split(self._pending, chunk)
        return self._lines.pop(0)

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()


def follow_output(container_id: str, tail: int = 200) -> OutputStream:
    return OutputStream(container_id, tail)


def stop(container_id: str, timeout: int) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; the container is kept."""
    try:
        client().api.stop(container_id, timeout=timeout)
    except docker.errors.NotFound:
        pass


def set_aside(container: Container, deployment: str) -> None:
    """A stopped container that a new one with the same fixed name replaces: renamed, so the new one
    can take the name, and kept, so a failure can bring it back (see bring_back)."""
    try:
        client().api.rename(container.id, f"{container.name}-replaced-by-{deployment}")
    except docker.errors.NotFound:
        pass


def bring_back(container: Container) -> Container:
    """Undo set_aside (the name is free again once the new container is removed), then start it."""
    try:
        found = client().containers.get(container.id)
        if found.name != container.name:
            found.rename(container.name)
    except docker.errors.APIError as error:
        raise RuntimeFailure(f"Docker could not give {container.name} its name back: {error.explanation or error}")
    return restart(container)


def restart(container: Container) -> Container:
    """Start a stopped container again; its address may change, so it is read anew."""
    found = client().containers.get(container.id)
    found.start()
    return _running(found, container.port)


def address(container_id: str) -> str:
    """The container's current IP on its app's network ('' if it has none)."""
    try:
        return _running(client().containers.get(container_id), 0).ip
    except docker.errors.NotFound:
        return ""


def _running(container, port: int) -> Container:
    container.reload()
    ip = _app_network_ip(container.labels, container.attrs["NetworkSettings"]["Networks"])
    return Container(id=container.id, name=container.name, ip=ip, port=port)


def _app_network_ip(labels: dict[str, str], networks: dict[str, dict]) -> str:
    # A container started before networks were per app sits on the old shared network
    # until its app's next deploy replaces it.
    app_network = network_name(labels.get(LABEL_APP, ""))
    found = networks.get(app_network) or networks.get(settings.SWITCHYARD["DOCKER_NETWORK"]) or {}
    return found.get("IPAddress", "")


def stop_and_remove(container_id: str, timeout: int) -> None:
    """SIGTERM, wait up to `timeout` seconds, SIGKILL; then remove. Gone already is fine."""
    try:
        client().api.stop(container_id, timeout=timeout)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError:
        pass  # removal below forces it
    try:
        client().api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code != 409:  # 409: another process is removing it already
            raise


def containers(app_name: str | None = None) -> list[ListedContainer]:
    """This installation's containers (optionally one app's), running or not."""
    filters = [f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"]
    if app_name:
        filters.append(f"{LABEL_APP}={app_name}")
    found = client().api.containers(all=True, filters={"label": filters})
    return [ListedContainer(id=c["Id"], name=c["Names"][0].lstrip("/"), app=c["Labels"].get(LABEL_APP, ""),
                            deployment=c["Labels"].get(LABEL_DEPLOYMENT, ""), state=c["State"],
                            ip=_app_network_ip(c["Labels"], (c.get("NetworkSettings") or {}).get("Networks") or {}))
            for c in found]


def app_images(repository: str) -> list[str]:
    """Tags of one app's images (repository:tag), its services' too (repository/SERVICE:tag)."""
    tags = []
    for name in (repository, f"{repository}/*"):
        for image in client().images.list(name=name,  # another installation's images are not ours to prune
                                          filters={"label": f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"}):
            tags += [t for t in image.tags if t.startswith((repository + ":", repository + "/")) and t not in tags]
    return tags


def remove_images(tags: Iterable[str]) -> list[str]:
    """Remove images by tag; one still used by a container is left alone. Returns removed tags."""
    removed = []
    for tag in tags:
        try:
            client().images.remove(tag, noprune=False)
            removed.append(tag)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError:
            pass  # in use by a container (e.g. a release still draining): next deploy retries
    return removed


def remove_instance_resources() -> None:
    """Every container, image, volume and network labelled with this installation (tests, benchmarks)."""
    for container in containers():
        stop_and_remove(container.id, timeout=0)
    label = f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"
    for image in client().images.list(filters={"label": label}):
        client().images.remove(image.id, force=True)
    for volume in client().volumes.list(filters={"label": label}):
        volume.remove(force=True)
    remove_app_networks()


def ensure_volume(app_name: str, app_id: int, volume: str) -> str:
    """The Docker volume behind a compose file's named volume: sy-APP_ID_NAME, labelled with the
    app's id, created on first use. It outlives every container: deploys, redeploys and rollbacks
    keep it. The id is in its name and label, so an app created later under a deleted app's name
    starts with empty volumes, never with the other's data."""
    name = f"sy-{app_name}_{app_id}_{volume}"
    try:
        found = client().volumes.get(name)
    except docker.errors.NotFound:
        client().volumes.create(name, labels=instance_labels(**{LABEL_APP: app_name, LABEL_APP_ID: str(app_id)}))
        return name
    if (found.attrs.get("Labels") or {}).get(LABEL_APP_ID) != str(app_id):
        raise RuntimeFailure(f"the Docker volume {name} exists and is not this app's: remove or rename it")
    return name


def remove_app_volumes(app_id: int) -> None:
    """A deleted app's volumes (its data goes with it); one still in use stays for reconcile."""
    remove_orphan_volumes(keep=(), only=app_id)


def remove_orphan_volumes(keep: Iterable[int], only: int | None = None) -> list[str]:
    """This installation's app volumes whose app (by id) is not in `keep`; returns their names."""
    label = [f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}", LABEL_APP_ID]
    kept, removed = {str(i) for i in keep}, []
    for volume in client().volumes.list(filters={"label": label}):
        owner = (volume.attrs.get("Labels") or {}).get(LABEL_APP_ID)
        if owner in kept or (only is not None and owner != str(only)):
            continue
        try:
            volume.remove(force=True)
            removed.append(volume.name)
        except docker.errors.APIError:
            pass  # still in use by a container being removed: the next run takes it
    return removed


def image_id(tag: str) -> str:
    try:
        return client().images.get(tag).id
    except docker.errors.ImageNotFound:
        return ""


def image_facts(reference: str) -> "buildimages.Image | None":
    """An image as Docker resolves `reference` for a build (tag, ID, short ID or digest), or None
    if it has none by that name."""
    try:
        found = client().api.inspect_image(reference)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as error:
        if error.status_code in (400, 404):  # not a valid reference: no image by that name
            return None
        raise RuntimeFailure(f"Docker could not inspect {reference}: {error.explanation or error}") from error
    config = found.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    return buildimages.Image(id=found["Id"], tags=tuple(found.get("RepoTags") or ()), labels=config.get("Labels") or {},
                             env=env, onbuild=tuple(config.get("OnBuild") or ()))


def pull_image(reference: str, should_stop: Callable[[], bool] = lambda: False, timeout: int | None = None) -> bool:
    """Pull `reference` from its registry (a base image the build check needs to see before the
    build); False if Docker could not, for whatever reason (no such image, no registry reachable,
    not a reference at all): the check then refuses the name, the same way as an unusable one.

    A registry decides how fast and how much it sends, so the pull is bounded like the build:
    stopped on request (BuildStopped) or after `timeout` seconds (default BUILD_TIMEOUT), and once
    its layers add up to more than MAX_PULL_MB (both BuildFailed). Stopping closes the connection;
    dockerd cancels a pull whose client went away."""
    timeout = timeout or settings.SWITCHYARD["BUILD_TIMEOUT"]
    stop_now = _Deadline(timeout, should_stop)
    repository, tag = docker.utils.parse_repository_tag(reference)
    api = _PullClient(read_timeout=timeout, **docker.utils.kwargs_from_env())
    try:
        stream = api.pull(repository, tag=tag or "latest", stream=True, decode=True)
        with _StopWatcher(stop_now, stream.close) as watcher:
            pulled = bool(_unless_stopped(lambda: _follow_pull(stream, reference), watcher))
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        pulled = False
    finally:
        api.close()
    if stop_now():  # whatever the closed (or timed out) connection made of the pull
        if stop_now.expired:
            raise BuildFailed(f"pulling {reference} did not finish within {timeout} s")
        raise BuildStopped()
    return pulled


class _PullClient(_CancellableClient):
    """docker-py sends a pull with no HTTP timeout; this gives it one (the pull's deadline), for a
    registry that holds dockerd up before the first progress event, when there is no stream to close."""

    def __init__(self, read_timeout: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.read_timeout = read_timeout

    def _post(self, url, **kwargs):
        if url.endswith("/images/create"):
            kwargs["timeout"] = self.read_timeout
        return super()._post(url, **kwargs)


def _follow_pull(stream: CancellableStream, reference: str) -> bool:
    """Read a pull's progress events: False on Docker's error event; BuildFailed (and the stream
    closed) once the layers' declared sizes add up to more than MAX_PULL_MB."""
    cap_mb = settings.SWITCHYARD["MAX_PULL_MB"]
    layer_sizes: dict[str, int] = {}
    for event in stream:
        if "error" in event:
            return False
        total = (event.get("progressDetail") or {}).get("total")
        if event.get("id") and isinstance(total, int):
            layer_sizes.setdefault(event["id"], total)  # downloading, then extracting: counted once
        if sum(layer_sizes.values()) > cap_mb * 1024 * 1024:
            stream.close()
            raise BuildFailed(f"pulling {reference} stopped: larger than {cap_mb} MiB (SWITCHYARD_MAX_PULL_MB)")
    return True


def image_exists(tag: str) -> bool:
    try:
        client().images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ping() -> None:
    try:
        client().ping()
    except Exception as error:
        raise RuntimeFailure(f"Docker is not reachable ({error}); is dockerd running?") from error

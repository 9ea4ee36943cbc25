"""A release as a set of services: the typed values the pipeline deploys, read from a compose file
(file.py, under the rules of rules.py) or made from a single-Dockerfile app (single_service).

Each service gets a role, and the pipeline deploys each role the way it needs:
- WEB: the service HAProxy routes the app's domains to; deployed blue/green;
- STATEFUL: a service with a named volume (a database, a cache); kept running across
  deploys unless its definition changed;
- WORKER: everything else (workers, schedulers); replaced after the switch;
- CHAIN: a service without a named volume that the web service depends on (directly or through
  other such services: nginx → backend): part of the release, deployed blue/green with the web
  service on the release's own network (engine/chain.py);
- JOB: a one-shot service (a migration) another waits for with service_completed_successfully;
  run to its end at each deploy, before those that depend on it (engine/jobs.py).
"""
import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field

from deployments.compose.hooks import Hook
from deployments.compose.service_names import docker_name


class Role(str, enum.Enum):
    WEB = "web"
    STATEFUL = "stateful"
    WORKER = "worker"
    JOB = "job"
    CHAIN = "chain"


class ComposeError(ValueError):
    """The file cannot be deployed; `problems` says every reason, each naming where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class HealthCheck:
    """Docker's form: test is ["CMD", ...] or ["CMD-SHELL", "..."]; times in seconds."""
    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0

    def docker(self) -> dict:
        seconds = 1_000_000_000
        return {"test": list(self.test), "interval": int(self.interval * seconds),
                "timeout": int(self.timeout * seconds), "retries": self.retries,
                "start_period": int(self.start_period * seconds)}


@dataclass(frozen=True)
class VolumeMount:
    volume: str  # the name in the file; dockerd/volumes.py gives it the app's prefix
    target: str
    read_only: bool = False


# Fields added to ServiceSpec after releases were recorded, with their defaults (see definition()).
ADDED_FIELDS = {"runtime": "", "routed_port": None, "anonymous_volumes": ()}


@dataclass(frozen=True)
class FileMount:
    """A read-only copy of repository files (a bind mount), a secret or a config, in the release's
    files volume (dockerd/release_files.py). The digest (the content's sha256, or a directory's git
    tree) is part of the service's definition: a changed file means new containers."""
    target: str  # absolute, in the container
    what: str  # for the log: "./nginx.conf", "secret db_password"
    digest: str
    path: str = ""  # in the repository ("" for a secret or config given inline)
    directory: bool = False
    content: bytes | None = field(default=None, compare=False, repr=False)  # a file's; a directory's is read at deploy
    mode: int | None = None  # None: the repository's
    uid: int = 0
    gid: int = 0
    asked_writable: bool = False  # `:rw` was written: mounted read-only all the same, and the log says so

    def described(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "content"}


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    role: Role
    build_context: str = "."  # inside the repository
    dockerfile: str = "Dockerfile"  # relative to the context
    build_args: tuple[tuple[str, str], ...] = ()
    build_target: str = ""
    image: str = ""  # the reference as written, for a service with no build (compose/images.py)
    pull_policy: str = "missing"
    platform: str = ""
    command: tuple[str, ...] | str | None = None
    entrypoint: tuple[str, ...] | str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    user: str = ""
    replicas: int = 1
    volumes: tuple[VolumeMount, ...] = ()
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, condition)
    healthcheck: HealthCheck | None = None
    stop_grace_period: int = 10
    stop_signal: str = ""
    container_name: str = ""
    restart: str = "unless-stopped"
    read_only: bool = False
    tty: bool = False
    labels: tuple[tuple[str, str], ...] = field(default=())
    # Run once in a container of the new image before the release starts (x-switchyard-release-command).
    release_command: tuple[str, ...] = ()
    files: tuple[FileMount, ...] = ()  # bind mounts of repository files, secrets, configs
    anonymous_volumes: tuple[str, ...] = ()  # targets: scratch space of one container, removed with it
    runtime: str = ""  # a container runtime the administrator allows (compose/runtimes.py), "" for dockerd's default
    routed_port: int | None = None  # the web service's container port from its ports:, else the app's port setting

    @property
    def docker_name(self) -> str:
        """The name in image repositories and container names: lower-case, collision-free."""
        return docker_name(self.name)
    aliases: tuple[str, ...] = ()  # from networks.*.aliases: names it is found by beside its service name
    hostname: str = ""
    stdin_open: bool = False
    post_start: tuple[Hook, ...] = ()  # run with exec in each new container (engine/hooks.py)
    pre_stop: tuple[Hook, ...] = ()  # run before a container is stopped

    def definition(self) -> str:
        """What the service is, as one string: a stateful service whose definition (and image)
        did not change keeps running across a deploy. The release command is not part of it:
        it runs at each deploy, it does not change what runs. Fields added since releases were
        recorded are left out at their default, so that upgrading Switchyard does not restart
        every database whose file did not change (files: their content's digest, not the bytes)."""
        described = {key: value for key, value in asdict(self).items() if key not in ("release_command", "files")
                     and not (key in ADDED_FIELDS and value == ADDED_FIELDS[key])}
        if self.files:
            described["files"] = [mount.described() for mount in self.files]
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()

    def recreate_reasons(self) -> list[str]:
        """Why two containers of this service cannot run side by side (the web service is then
        deployed by recreate: the old one stops first)."""
        reasons = []
        if self.container_name:
            reasons.append(f"container_name {self.container_name!r}: one container at a time can have a name")
        for mount in self.volumes:
            if not mount.read_only:
                reasons.append(f"volume {mount.volume!r}: the old and the new release would write it at once")
        return reasons


@dataclass(frozen=True)
class Project:
    services: tuple[ServiceSpec, ...]
    volumes: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # what was read but not done as written (e.g. ports not published)

    @property
    def web(self) -> ServiceSpec:
        return next(service for service in self.services if service.role == Role.WEB)

    def of_role(self, role: Role) -> list[ServiceSpec]:
        """In dependency order: each after those it depends on."""
        return [service for service in self.services if service.role == role]

    def service(self, name: str) -> ServiceSpec:
        return next(service for service in self.services if service.name == name)


def single_service(dockerfile: str, replicas: int) -> Project:
    """A single-Dockerfile app: a project of one web service built from the repository's root."""
    return Project(services=(ServiceSpec(name="web", role=Role.WEB, dockerfile=dockerfile, replicas=replicas,
                                         stop_grace_period=0),))

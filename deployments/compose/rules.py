"""Switchyard's rules over a compose file that passed the schema: each service read into a
ServiceSpec, every problem collected. What Switchyard does not do is refused by name with the
reason (nothing is silently dropped): what would loosen an app's confinement (host networking,
privileges, bind mounts, devices), what conflicts with its settings (resource limits), and what
it has no way to honour yet."""
import re
import shlex
from dataclasses import replace
from pathlib import PurePosixPath

from deployments.compose import mounts
from deployments.compose.dependencies import chain_services, one_shot_services, read_depends_on
from deployments.compose.environment_files import service_environment
from deployments.compose.hooks import read_hooks
from deployments.compose.images import read_image
from deployments.compose.networks import ALIAS, read_service_networks, read_top_level
from deployments.compose.ports import read_ports
from deployments.compose.profiles import active_services
from deployments.compose.project import ComposeError, FileMount, HealthCheck, Project, Role, ServiceSpec, VolumeMount
from deployments.compose.repofiles import RepoFiles
from deployments.compose.restart import read_restart
from deployments.compose.runtimes import runtime_problem
from deployments.compose.service_names import SERVICE_NAME
from deployments.compose.values import command as command_of, duration, pairs
from deployments.traffic.table import MAX_REPLICAS

MAX_SERVICES = 20
MAX_CONTAINERS = 40  # all services' replicas together; each container gets the app's full limits
MIN_HEALTH_INTERVAL = 1.0  # seconds: Docker runs each check as a process on the host
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
CONTAINER_NAME = VOLUME_NAME  # Docker's grammar; Switchyard puts sy-APP- before it

CONFINEMENT = "it would loosen the app's confinement (see the app's limits and capabilities)"
LIMITS = "each container's limits are the app's settings (memory, CPU, processes)"
ONE_NETWORK = "every service runs on the app's own network, where services find each other by service name"
RELEASE_COMMAND_KEY = "x-switchyard-release-command"
COMPOSE_LABELS = "com.docker.compose."  # Docker Compose's own bookkeeping; a copy would mislead it and us

REFUSED_KEYS = {
    "links": ONE_NETWORK, "external_links": ONE_NETWORK,
    "volumes_from": "share data through a named volume instead",
    "privileged": CONFINEMENT, "cap_add": "capabilities are the app's setting (Capabilities)", "cap_drop": CONFINEMENT,
    "security_opt": CONFINEMENT, "devices": CONFINEMENT, "device_cgroup_rules": CONFINEMENT, "pid": CONFINEMENT,
    "ipc": CONFINEMENT, "userns_mode": CONFINEMENT, "cgroup_parent": CONFINEMENT, "sysctls": CONFINEMENT,
    "isolation": CONFINEMENT, "oom_kill_disable": CONFINEMENT, "oom_score_adj": CONFINEMENT,
    "mem_limit": LIMITS, "memswap_limit": LIMITS, "mem_reservation": LIMITS, "mem_swappiness": LIMITS,
    "cpus": LIMITS, "cpu_count": LIMITS, "cpu_percent": LIMITS, "cpu_period": LIMITS, "cpu_quota": LIMITS,
    "cpu_rt_period": LIMITS, "cpu_rt_runtime": LIMITS, "cpu_shares": LIMITS, "cpuset": LIMITS, "pids_limit": LIMITS,
    "blkio_config": LIMITS, "ulimits": LIMITS, "shm_size": LIMITS, "storage_opt": LIMITS,
    "uts": CONFINEMENT, "cgroup": CONFINEMENT, "gpus": CONFINEMENT,
    "use_api_socket": "the Docker socket and its credentials are the host's: an app never reaches them",
    "scale": "use deploy.replicas", "logging": "Switchyard keeps each container's output itself (10 MB × 3)",
}
SUPPORTED_KEYS = {"build", "image", "command", "entrypoint", "environment", "working_dir", "user", "deploy",
                  "depends_on", "healthcheck", "volumes", "stop_grace_period", "stop_signal", "container_name",
                  "expose", "restart", "labels", "init", "read_only", "tty", "ports",
                  "runtime", "profiles", "env_file", "secrets", "configs", "pull_policy", "platform",
                  "networks", "network_mode", "hostname", "stdin_open", "post_start", "pre_stop"}
TOP_LEVEL_REFUSED = {"models": "Switchyard runs no AI models"}


def read_services(document: dict, *, web_service: str, default_replicas: int, environment: dict[str, str],
                  files: RepoFiles | None = None, base_dir: str = ".", app_port: int | None = None,
                  allowed_runtimes: tuple[str, ...] = (), profiles: tuple[str, ...] = ()) -> Project:
    """The project a schema-valid, interpolated document describes; raises ComposeError with every problem.
    `files`: the repository's files the document names (none: each read as empty), relative to `base_dir`."""
    services, problems, notices = active_services(document.get("services") or {}, active=profiles,
                                                  web_service=web_service)
    document = {**document, "services": services}
    reader = _Reader(document, web_service, default_replicas, environment, files or RepoFiles(None), base_dir,
                     app_port, allowed_runtimes)
    reader.problems += problems
    reader.notices += notices
    return reader.project()


class _Reader:
    """Switchyard's rules over a file that passed the schema; collects every problem."""

    def __init__(self, document: dict, web_service: str, default_replicas: int, environment: dict[str, str],
                 files: RepoFiles, base_dir: str, app_port: int | None, allowed_runtimes: tuple[str, ...]) -> None:
        self.document = document
        self.web_service = web_service
        self.default_replicas = default_replicas
        self.environment = environment
        self.problems: list[str] = []
        self.notices: list[str] = []
        self.app_port = app_port
        self.allowed_runtimes = allowed_runtimes
        self.volumes = self._volumes()
        self.files, self.base_dir = files, base_dir
        self.service_files = mounts.ServiceFiles(document, files=files, base_dir=base_dir, environment=environment,
                                                 problems=self.problems)

    def project(self) -> Project:
        for key, reason in TOP_LEVEL_REFUSED.items():
            if key in self.document:
                self.problems.append(f"{key}: not supported: {reason}")
        services = self.document.get("services") or {}
        if self.web_service not in services:
            self.problems.append(f"services: there is no service {self.web_service!r} to route the app's domains to "
                                 f"(the web service; services here: {', '.join(services) or 'none'})")
        if len(services) > MAX_SERVICES:
            self.problems.append(f"services: at most {MAX_SERVICES} services")
        self._absorb(read_top_level(self.document))
        specs = self._with_jobs([self._service(name, definition or {}) for name, definition in services.items()])
        if sum(spec.replicas for spec in specs) > MAX_CONTAINERS:
            self.problems.append(f"services: at most {MAX_CONTAINERS} containers in all (deploy.replicas added up)")
        if not self.problems:
            self._check_dependencies(specs)
        if self.problems:
            raise ComposeError(self.problems)
        return Project(services=tuple(_dependency_order(specs)), volumes=tuple(dict.fromkeys(self.volumes.values())),
                       notices=tuple(self.notices))

    def _absorb(self, read):
        """A reader module's result: its problems and notices collected here."""
        self.problems += read.problems
        self.notices += read.notices
        return read

    def _with_jobs(self, specs: list[ServiceSpec]) -> list[ServiceSpec]:
        """Services another waits for with service_completed_successfully run once, at each deploy; the
        stateless ones the web service depends on form its chain, replaced blue/green with it."""
        one_shot = one_shot_services({spec.name: spec.depends_on for spec in specs})
        if self.web_service in one_shot:
            self.problems.append(f"services.{self.web_service}: the web service serves the app's domains; it cannot be "
                                 "waited for with service_completed_successfully")
        specs = [replace(spec, role=Role.JOB) if spec.name in one_shot and spec.role != Role.WEB else spec
                 for spec in specs]
        chain = chain_services(self.web_service, {spec.name: spec.depends_on for spec in specs},
                               {spec.name for spec in specs if spec.role == Role.WORKER})
        return [replace(spec, role=Role.CHAIN) if spec.name in chain else spec for spec in specs]

    def _volumes(self) -> dict[str, str]:
        """Each declared volume's name in the app's namespace: its `name:` if given (two keys may
        name one volume), else its key. dockerd/volumes.py puts the app's prefix before it, so a
        name never reaches another app's volume or one of the host's."""
        names = {}
        for key, definition in (self.document.get("volumes") or {}).items():
            definition = definition or {}
            name = str(definition.get("name", key))
            if not VOLUME_NAME.match(name):
                where = f"volumes.{key}" + (".name" if "name" in definition else "")
                self.problems.append(f"{where}: a volume name is letters, digits, '_', '.' and '-'")
            for refused in ("external", "driver", "driver_opts"):
                if refused in definition:
                    self.problems.append(f"volumes.{key}.{refused}: not supported: Switchyard creates each app's "
                                         "volumes itself, on this host, named after the app")
            names[key] = name
        return names

    def _service(self, name: str, definition: dict) -> ServiceSpec | None:
        where = f"services.{name}"
        self._check_keys(name, where, definition)
        web = name == self.web_service
        mounts_of = self._mounts(where, definition)
        role = Role.WEB if web else Role.STATEFUL if mounts_of["volumes"] else Role.WORKER
        ports = self._absorb(read_ports(where, definition.get("ports"), web=web, app_port=self.app_port))
        return ServiceSpec(
            name=name, role=role, **self._build(where, definition), **read_image(where, definition, self.problems),
            **mounts_of, **self._how_it_runs(where, definition), routed_port=ports.routed_port,
            command=command_of(definition.get("command")),
            entrypoint=command_of(definition.get("entrypoint")), environment=self._environment(where, definition),
            working_dir=definition.get("working_dir", ""), user=str(definition.get("user", "")),
            replicas=self._replicas(where, definition, web),
            depends_on=self._absorb(read_depends_on(where, definition.get("depends_on"),
                                                    defined=set(self.document.get("services") or {}))).pairs,
            healthcheck=self._healthcheck(where, definition.get("healthcheck")),
            stop_grace_period=self._seconds(f"{where}.stop_grace_period", definition.get("stop_grace_period", "10s")),
            stop_signal=definition.get("stop_signal", ""), container_name=definition.get("container_name", ""),
            read_only=bool(definition.get("read_only")), tty=bool(definition.get("tty")),
            labels=self._labels(where, definition.get("labels")),
            release_command=self._release_command(where, definition.get(RELEASE_COMMAND_KEY)))

    def _mounts(self, where: str, definition: dict) -> dict:
        """Named volumes, the repository's files (bind mounts, secrets, configs) and scratch volumes."""
        mounted = [self._mount(f"{where}.volumes", item) for item in definition.get("volumes") or []]
        files = (*(mount for mount in mounted if isinstance(mount, FileMount)),
                 *self.service_files.of_service(where, definition))
        mounts.check_targets(where, [*(m for m in mounted if not isinstance(m, FileMount)), *files], self.problems)
        return {"volumes": tuple(mount for mount in mounted if isinstance(mount, VolumeMount)), "files": files,
                "anonymous_volumes": tuple(mount for mount in mounted if isinstance(mount, str))}

    def _how_it_runs(self, where: str, definition: dict) -> dict:
        """Restart policy, network aliases, host name, hooks and runtime."""
        if problem := runtime_problem(where, definition.get("runtime"), self.allowed_runtimes):
            self.problems.append(problem)
        declared = set(self.document.get("networks") or {})
        networks = self._absorb(read_service_networks(where, definition, declared=declared))
        hooks = read_hooks(where, definition)
        self.problems += hooks.problems
        return {"restart": self._absorb(read_restart(where, definition)).policy, "aliases": networks.aliases,
                "hostname": self._hostname(where, definition.get("hostname")),
                "stdin_open": bool(definition.get("stdin_open")), "post_start": hooks.post_start,
                "pre_stop": hooks.pre_stop, "runtime": str(definition.get("runtime") or "")}

    def _check_keys(self, name: str, where: str, definition: dict) -> None:
        """The service's name, then each key: refused with its reason, or unknown to Switchyard."""
        if not SERVICE_NAME.match(name):
            self.problems.append(f"{where}: a service name is letters, digits, '.', '_' and '-' "
                                 "(at most 31), starting with a letter or digit")
        for key in definition:
            if key in REFUSED_KEYS:
                value = definition[key]
                shown = f" {value}" if isinstance(value, (str, int, bool)) else \
                    f" {', '.join(str(item) for item in value)}" if isinstance(value, (list, dict)) else ""
                self.problems.append(f"{where}.{key}:{shown} not supported: {REFUSED_KEYS[key]}")
            elif key not in SUPPORTED_KEYS and not key.startswith("x-"):
                self.problems.append(f"{where}.{key}: not supported by Switchyard")
        if definition.get("init") is False:
            self.problems.append(f"{where}.init: false not supported: Switchyard runs every container with an init, "
                                 "so that SIGTERM reaches the app's process")
        if "container_name" in definition and not CONTAINER_NAME.match(str(definition["container_name"])):
            self.problems.append(f"{where}.container_name: letters, digits, '_', '.' and '-', at most 63")

    def _release_command(self, where: str, value) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, list) and value and all(isinstance(word, str) for word in value):
            return tuple(value)
        if isinstance(value, str) and value.strip():
            try:
                return tuple(shlex.split(value))
            except ValueError as error:
                self.problems.append(f"{where}.{RELEASE_COMMAND_KEY}: {error} (quote as in a shell)")
                return ()
        self.problems.append(f"{where}.{RELEASE_COMMAND_KEY}: a command, as a string or a list of strings")
        return ()

    def _environment(self, where: str, definition: dict) -> tuple[tuple[str, str], ...]:
        return service_environment(where, definition, environment=self.environment, files=self.files,
                                   base_dir=self.base_dir, problems=self.problems)

    def _build(self, where: str, definition: dict) -> dict:
        build = definition.get("build")
        if build is None:  # an image service (compose/images.py)
            return {}
        if isinstance(build, str):
            build = {"context": build}
        for key in set(build) - {"context", "dockerfile", "args", "target"}:
            self.problems.append(f"{where}.build.{key}: not supported by Switchyard")
        context = str(build.get("context", "."))
        if not _inside_repository(context):
            self.problems.append(f"{where}.build.context: {context!r} must be a directory inside the repository")
        dockerfile = str(build.get("dockerfile", "Dockerfile"))
        if not _inside_repository(dockerfile):
            self.problems.append(f"{where}.build.dockerfile: {dockerfile!r} must be a path inside the context")
        return {"build_context": str(PurePosixPath(context)), "dockerfile": dockerfile,
                "build_args": pairs(build.get("args")), "build_target": str(build.get("target", ""))}

    def _replicas(self, where: str, definition: dict, web: bool) -> int:
        deploy = definition.get("deploy") or {}
        for key in set(deploy) - {"replicas", "restart_policy"}:
            self.problems.append(f"{where}.deploy.{key}: not supported: only deploy.replicas and restart_policy are "
                                 + ("honoured; " + LIMITS if key == "resources" else "honoured"))
        replicas = deploy.get("replicas", 1 if definition.get("container_name") else
                              self.default_replicas if web else 1)
        replicas = int(replicas) if str(replicas).isdigit() else 0  # the schema allows text, for ${VARIABLES}
        if not 1 <= replicas <= MAX_REPLICAS:
            self.problems.append(f"{where}.deploy.replicas: between 1 and {MAX_REPLICAS}")
        elif replicas > 1 and definition.get("container_name"):
            self.problems.append(f"{where}.container_name: a name is for one container; with deploy.replicas "
                                 f"{replicas}, leave container_name out")
        return replicas

    def _mount(self, where: str, item) -> VolumeMount | FileMount | str | None:
        """A named volume, a copy of repository files (mounts.py), or an anonymous volume's target."""
        if isinstance(item, str):
            item = mounts.short_mount(where, item, self.problems)
        kind, source = item.get("type", "volume"), item.get("source", "")
        if not item.get("target"):
            self.problems.append(f"{where}: {source or item!r}: needs a target (the path in the container)")
        elif kind == "bind" or (kind == "volume" and mounts.is_path(source)):
            return self.service_files.bind(where, item)
        elif kind != "volume":
            self.problems.append(f"{where}: {source or kind!r}: only named volumes and files of the repository are "
                                 "supported")
        elif not source:
            return mounts.container_path(where, item["target"], self.problems) or None
        elif source not in self.volumes:
            self.problems.append(f"{where}: volume {source!r} is not declared under the top-level volumes:")
        else:
            return VolumeMount(volume=self.volumes[source], target=item["target"], read_only=bool(item.get("read_only")))
        return None

    def _healthcheck(self, where: str, healthcheck: dict | None) -> HealthCheck | None:
        if not healthcheck or healthcheck.get("disable"):
            return None
        test = healthcheck.get("test")
        if test is None:
            self.problems.append(f"{where}.healthcheck.test: needed (the build's HEALTHCHECK is not read)")
            return None
        test = ("CMD-SHELL", test) if isinstance(test, str) else tuple(test)
        if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE") or (test[0] != "NONE" and len(test) < 2):
            self.problems.append(f"{where}.healthcheck.test: a command: [CMD, program, args...], "
                                 "[CMD-SHELL, \"shell line\"] or a string")
            return None
        if test[0] == "NONE":
            return None
        if "start_interval" in healthcheck:
            self.notices.append(f"{where}.healthcheck.start_interval: not applied (this Docker API has none): "
                                "checks run every interval from the start; start_period still applies")
        interval = self._seconds(f"{where}.healthcheck.interval", healthcheck.get("interval", "30s"), whole=False)
        if interval < MIN_HEALTH_INTERVAL:
            self.problems.append(f"{where}.healthcheck.interval: at least {MIN_HEALTH_INTERVAL:g}s")
        return HealthCheck(test=test, interval=interval,
                           timeout=self._seconds(f"{where}.healthcheck.timeout", healthcheck.get("timeout", "30s"),
                                                 whole=False),
                           retries=_count(healthcheck.get("retries", 3)),
                           start_period=self._seconds(f"{where}.healthcheck.start_period",
                                                      healthcheck.get("start_period", "0s"), whole=False))

    def _labels(self, where: str, labels) -> tuple[tuple[str, str], ...]:
        labelled = pairs(labels)
        for key, _ in labelled:
            if key.startswith("switchyard."):
                self.problems.append(f"{where}.labels: {key}: labels under switchyard. are Switchyard's own")
            elif key.startswith(COMPOSE_LABELS):
                self.problems.append(f"{where}.labels: {key}: labels under {COMPOSE_LABELS} are Docker Compose's own")
        return labelled

    def _hostname(self, where: str, hostname) -> str:
        if hostname is None:
            return ""
        if not isinstance(hostname, str) or not ALIAS.match(hostname):
            self.problems.append(f"{where}.hostname: {hostname!r}: a host name (letters, digits, '_', '.' and '-', "
                                 "at most 63)")
            return ""
        return hostname

    def _seconds(self, where: str, value, whole: bool = True) -> float:
        seconds = duration(value)
        if seconds is None or seconds > 3600:
            self.problems.append(f"{where}: {value!r} is not a duration up to 1h (such as 10s, 1m30s)")
            return 0
        return int(seconds) if whole else seconds

    def _check_dependencies(self, specs: list[ServiceSpec]) -> None:
        roles = {spec.name: spec.role for spec in specs}
        for spec in specs:
            for name, condition in spec.depends_on:
                if name not in roles:
                    self.problems.append(f"services.{spec.name}.depends_on: there is no service {name!r}")
                elif spec.role != Role.WORKER and roles[name] not in _MAY_WAIT_FOR[spec.role]:
                    self.problems.append(
                        f"services.{spec.name}.depends_on.{name}: a {spec.role.value} service can depend only on "
                        "services that hold state (named volumes) or one-shot ones (service_completed_successfully): "
                        "the others are replaced with the web service or after it goes live")
                elif condition == "service_healthy" and not next(s for s in specs if s.name == name).healthcheck:
                    self.problems.append(f"services.{spec.name}.depends_on.{name}: service_healthy needs a "
                                         f"healthcheck on {name}")
        if not self.problems and _dependency_order(specs) is None:
            self.problems.append("services: depends_on forms a cycle")


# What each role may depend on (workers: anything, they start last). Only the web service and its
# chain wait for the chain: it is replaced with them, on their release's network.
_MAY_WAIT_FOR = {Role.WEB: (Role.STATEFUL, Role.JOB, Role.CHAIN), Role.CHAIN: (Role.STATEFUL, Role.JOB, Role.CHAIN),
                 Role.STATEFUL: (Role.STATEFUL, Role.JOB), Role.JOB: (Role.STATEFUL, Role.JOB)}


def _dependency_order(specs: list[ServiceSpec]) -> list[ServiceSpec] | None:
    """Each service after those it depends on, else in file order; None if there is a cycle."""
    ordered: list[ServiceSpec] = []
    remaining = list(specs)
    while remaining:
        ready = [s for s in remaining if all(name in {o.name for o in ordered} for name, _ in s.depends_on)]
        if not ready:
            return None
        ordered.append(ready[0])
        remaining.remove(ready[0])
    return ordered


def _count(value) -> int:
    """A whole number the schema allows as text (for ${VARIABLES}); 0 if it is not one."""
    return int(value) if isinstance(value, int) or str(value).isdigit() else 0


def _inside_repository(path: str) -> bool:
    if "://" in path or path.startswith(("/", "~", "git@")):
        return False
    return ".." not in PurePosixPath(path).parts

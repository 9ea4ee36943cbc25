"""What a service mounts besides named volumes: bind mounts of the repository's own files, secrets
and configs (each a read-only copy for the release: compose/project.py FileMount), and anonymous
volumes (scratch space of one container). Each problem names the service's key and what to do."""
import hashlib
import posixpath

from deployments.compose.project import FileMount
from deployments.compose.repofiles import PathRefused, RepoFiles, repo_path

SHORT_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}
IGNORED_DEFINITION_KEYS = {"name", "labels"}  # a swarm's name and labels: nothing to do on one host
KINDS = {"secrets": ("secret", "/run/secrets/"), "configs": ("config", "/")}


def is_path(source: str) -> bool:
    """Compose's rule: a volume's source that starts with '.', '/' or '~' is a path on the host."""
    return source.startswith((".", "/", "~"))


def short_mount(where: str, item: str, problems: list[str]) -> dict:
    """`SOURCE:TARGET[:MODE]` or a bare `TARGET` in the long syntax's form."""
    source, _, rest = item.partition(":")
    if not rest:
        return {"type": "volume", "target": source}
    target, _, mode = rest.partition(":")
    if not source:
        problems.append(f"{where}: {item!r}: nothing before ':' (a volume's name, or ./path in the repository)")
    modes = set(mode.split(",")) - {""}
    if modes - SHORT_MODES:
        problems.append(f"{where}: {item!r}: the mode may be ro or rw (z, Z, cached, delegated have no effect here)")
    return {"type": "bind" if is_path(source) else "volume", "source": source, "target": target,
            **({"read_only": True} if "ro" in modes else {}), "asked_writable": "rw" in modes}


def container_path(where: str, target: str, problems: list[str]) -> str:
    if not target.startswith("/"):
        problems.append(f"{where}: {target!r}: the target must be an absolute path in the container")
        return ""
    return posixpath.normpath(target)


def check_targets(where: str, mounted: list, problems: list[str]) -> None:
    """Two mounts at one path in a container: Docker would refuse to start it."""
    targets = [item if isinstance(item, str) else item.target for item in mounted if item]
    for target in sorted({target for target in targets if targets.count(target) > 1}):
        problems.append(f"{where}: {target!r} is mounted more than once (volumes, secrets and configs together)")


class ServiceFiles:
    """The repository files, secrets and configs of one compose file's services, read through
    `files`; paths relative to the compose file's directory `base_dir`."""

    def __init__(self, document: dict, *, files: RepoFiles, base_dir: str, environment: dict[str, str],
                 problems: list[str]) -> None:
        self.files, self.base_dir, self.environment, self.problems = files, base_dir, environment, problems
        self.definitions = {key: {name: self._definition(key, name, value or {})
                                  for name, value in (document.get(key) or {}).items()} for key in KINDS}

    def bind(self, where: str, item: dict) -> FileMount | None:
        """A bind mount of a file or directory of the repository, read-only whatever was written."""
        source = str(item.get("source", ""))
        if not source:
            self.problems.append(f"{where}: {item.get('target')!r}: a bind mount needs a source (./path in the repository)")
            return None
        target = container_path(where, str(item.get("target", "")), self.problems)
        try:
            entry = self.files.entry(repo_path(self.base_dir, source))
        except PathRefused as refused:
            self.problems.append(f"{where}: {source!r}: {refused}")
            return None
        if not target:
            return None
        return FileMount(target=target, what=source, digest=entry.digest, path=entry.path,
                         directory=entry.directory, content=entry.content,
                         asked_writable=bool(item.get("asked_writable")) or item.get("read_only") is False)

    def of_service(self, where: str, definition: dict) -> list[FileMount]:
        """The service's `secrets` and `configs`, each where Compose puts it."""
        mounts = []
        for key, (kind, directory) in KINDS.items():
            for item in definition.get(key) or []:
                item = {"source": item} if isinstance(item, str) else item
                mount = self._attached(f"{where}.{key}", key, item, directory)
                if mount is not None:
                    mounts.append(mount)
        return mounts

    def _attached(self, where: str, key: str, item: dict, directory: str) -> FileMount | None:
        name = str(item.get("source", ""))
        if name not in self.definitions[key]:
            self.problems.append(f"{where}: {name!r} is not declared under the top-level {key}:")
            return None
        found = self.definitions[key][name]
        if found is None:
            return None
        target = str(item.get("target") or name)
        target = target if target.startswith("/") else directory + target
        mode = item.get("mode")
        if mode is not None and not (isinstance(mode, int) and 0 <= mode <= 0o777):
            self.problems.append(f"{where}: {name}: mode {mode!r} is not a file mode (such as 0440)")
            mode = None
        owner = {}
        for field in ("uid", "gid"):
            value = str(item.get(field, "0"))
            if not value.isdigit():
                self.problems.append(f"{where}: {name}: {field} {value!r} must be a number")
            owner[field] = int(value) if value.isdigit() else 0
        return FileMount(target=posixpath.normpath(target), what=f"{KINDS[key][0]} {name}", digest=found.digest,
                         path=found.path, content=found.content, mode=0o444 if mode is None else mode, **owner)

    def _definition(self, key: str, name: str, definition: dict) -> FileMount | None:
        """A top-level secret or config: from a file of the repository, one of the app's
        environment variables, or (a config) the content written out."""
        where = f"{key}.{name}"
        sources = [k for k in ("file", "environment", "content", "external") if k in definition]
        for other in set(definition) - {"file", "environment", "content", "external"} - IGNORED_DEFINITION_KEYS:
            if not other.startswith("x-"):
                self.problems.append(f"{where}.{other}: not supported: {KINDS[key][0]}s come from a file of the "
                                     "repository or from the app's environment variables")
        if definition.get("external"):
            self.problems.append(f"{where}.external: not supported: there is no swarm or store of {key} here; name "
                                 f"one of the app's environment variables (environment: NAME, encrypted at rest) or "
                                 "a file of the repository (file: ./path)")
            return None
        if len(sources) != 1 or sources == ["content"] and key == "secrets":
            self.problems.append(f"{where}: give exactly one of file: (a file of the repository) or environment: "
                                 "(one of the app's environment variables)" + (" or content:" if key == "configs" else ""))
            return None
        if "environment" in definition:
            variable = str(definition["environment"])
            if variable not in self.environment:
                self.problems.append(f"{where}.environment: {variable!r} is not one of the app's environment variables")
                return None
            return _inline(where, self.environment[variable].encode())
        if "content" in definition:
            return _inline(where, str(definition["content"]).encode())
        try:
            path = repo_path(self.base_dir, str(definition["file"]))
            content = self.files.file(path)
        except PathRefused as refused:
            self.problems.append(f"{where}.file: {definition['file']!r}: {refused}")
            return None
        return FileMount(target="", what=where, digest=hashlib.sha256(content).hexdigest(), path=path, content=content)


def _inline(where: str, content: bytes) -> FileMount:
    return FileMount(target="", what=where, digest=hashlib.sha256(content).hexdigest(), content=content)

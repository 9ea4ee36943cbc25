"""A compose file read: `load()` takes its text and returns a Project, or raises ComposeError
listing every problem: first the file's size and YAML, then the Compose specification's JSON
schema, then the app's variables interpolated, then Switchyard's own rules (rules.py)."""
import posixpath

from deployments.compose.composition import Composition
from deployments.compose.interpolate import InterpolationError, interpolate
from deployments.compose.project import ComposeError, Project
from deployments.compose.repofiles import ReadFile, RepoFiles
from deployments.compose.rules import read_services
from deployments.compose.schema import check_schema
from deployments.compose.yaml_reading import read_yaml

MAX_FILE_BYTES = 256 * 1024


def load(text: str, web_service: str, environment: dict[str, str], default_replicas: int = 1, *,
         read_file: ReadFile | None = None, compose_file: str = "compose.yaml", app_port: int | None = None,
         allowed_runtimes: tuple[str, ...] = (), profiles: tuple[str, ...] = ()) -> Project:
    """Validate and read a compose file. Raises ComposeError with every problem found.
    `read_file`: the repository's files at the same commit (repofiles.py), for what the file names
    (bind mounts, secrets, configs, env_file); without it each is taken as empty, for a reader that
    only shows the services. `compose_file`: its path in the repository (the others are relative to it).
    app_port (the app's port setting) chooses among the web service's ports when it lists several;
    allowed_runtimes are those `runtime:` may name (SWITCHYARD_ALLOWED_RUNTIMES); profiles are the
    active ones (a service in none of them is left out)."""
    files = RepoFiles(read_file)
    compose_file = posixpath.normpath(compose_file)
    base_dir = posixpath.dirname(compose_file) or "."
    composition = Composition(files=files, parse=_parse, compose_file=compose_file)
    document = _parse(text)
    try:
        document = composition.include(document, path=compose_file)
        document = composition.extend(_checked(document, environment), compose_file,
                                      environment_of=lambda other: _checked(other, environment))
        return read_services(document, web_service=web_service, default_replicas=default_replicas,
                             environment=environment, files=files, base_dir=base_dir, app_port=app_port,
                             allowed_runtimes=allowed_runtimes, profiles=profiles)
    except ComposeError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:  # a shape no rule foresaw
        raise ComposeError([f"the compose file could not be read ({type(error).__name__}: {error}); "
                            "check it with `docker compose config`"]) from None


def _checked(document: dict, environment: dict[str, str]) -> dict:
    """A document past the schema, with the app's variables interpolated."""
    check_schema(document)
    try:
        return interpolate(document, environment)
    except InterpolationError as error:
        raise ComposeError([str(error)]) from None


def _parse(text: str) -> dict:
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ComposeError([f"the compose file is larger than {MAX_FILE_BYTES // 1024} KiB"])
    document = read_yaml(text)
    if not isinstance(document, dict):
        raise ComposeError(["the compose file must be a mapping with a services: key"])
    if bad := _non_string_keys(document):
        raise ComposeError([f"{bad}: keys must be text (quote them)"])
    return document


def _non_string_keys(value, where: str = "") -> str:
    """Where a mapping has a key that is not text (e.g. a service named 123), or ""."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str):
                return path
            if found := _non_string_keys(item, path):
                return found
    elif isinstance(value, list):
        for item in value:
            if found := _non_string_keys(item, where):
                return found
    return ""

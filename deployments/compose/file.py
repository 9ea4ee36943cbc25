"""A compose file read: `load()` takes its text and returns a Project, or raises ComposeError
listing every problem: first the file's size and YAML, then the Compose specification's JSON
schema, then the app's variables interpolated, then Switchyard's own rules (rules.py)."""
import json
import posixpath
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from deployments.compose.composition import Composition
from deployments.compose.interpolate import InterpolationError, interpolate
from deployments.compose.project import ComposeError, Project
from deployments.compose.repofiles import ReadFile, RepoFiles
from deployments.compose.rules import read_services

MAX_FILE_BYTES = 256 * 1024
MAX_YAML_EVENTS = 50_000  # a file of 256 KiB has fewer; bounds the work of reading one


def load(text: str, web_service: str, environment: dict[str, str], default_replicas: int = 1, *,
         read_file: ReadFile | None = None, compose_file: str = "compose.yaml") -> Project:
    """Validate and read a compose file. Raises ComposeError with every problem found.
    `read_file`: the repository's files at the same commit (repofiles.py), for what the file names
    (bind mounts, secrets, configs, env_file); without it each is taken as empty, for a reader that
    only shows the services. `compose_file`: its path in the repository (the others are relative to it)."""
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
                             environment=environment, files=files, base_dir=base_dir)
    except ComposeError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:  # a shape no rule foresaw
        raise ComposeError([f"the compose file could not be read ({type(error).__name__}: {error}); "
                            "check it with `docker compose config`"]) from None


def _checked(document: dict, environment: dict[str, str]) -> dict:
    """A document past the schema, with the app's variables interpolated."""
    _check_schema(document)
    try:
        return interpolate(document, environment)
    except InterpolationError as error:
        raise ComposeError([str(error)]) from None


def _parse(text: str) -> dict:
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ComposeError([f"the compose file is larger than {MAX_FILE_BYTES // 1024} KiB"])
    try:
        _check_events(text)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ComposeError([f"the compose file is not valid YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise ComposeError(["the compose file must be a mapping with a services: key"])
    if bad := _non_string_keys(document):
        raise ComposeError([f"{bad}: keys must be text (quote them)"])
    document.pop("name", None)  # the project's name is the app's (newer files carry it; the schema here predates it)
    return document


def _check_events(text: str) -> None:
    """YAML aliases are refused: a few hundred bytes of nested aliases expand into millions of
    nodes (a "billion laughs"), and reading the file would take the worker or the panel down."""
    for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
        if isinstance(event, yaml.AliasEvent):
            raise ComposeError([f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                                "supported: write the values out"])
        if count > MAX_YAML_EVENTS:
            raise ComposeError(["the compose file has too many values"])


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


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((Path(__file__).with_name("compose-spec.json")).read_text())
    return jsonschema.Draft201909Validator(schema)


def _check_schema(document: dict) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    if errors:
        raise ComposeError([f"{_where(error.absolute_path)}: {error.message} (Compose specification)"
                            for error in errors[:10]])


def _where(path) -> str:
    return ".".join(str(part) for part in path) or "the file"

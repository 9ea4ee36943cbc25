"""A compose file made of several: top-level `include` (other compose files of the repository,
their services, volumes, secrets and configs added to this one's) and a service's `extends` (a
service of this file or of another file of the repository, merged under Compose's rules:
merging.py). Paths in another file are relative to its own directory and are moved to stay so.
Bounded: at most MAX_DEPTH files deep, MAX_FILES files in all; a cycle is refused."""
import copy
import posixpath
from collections.abc import Callable

from deployments.compose.merging import merge_service, move_document, move_service
from deployments.compose.project import ComposeError
from deployments.compose.repofiles import PathRefused, RepoFiles, repo_path

MAX_DEPTH = 5
MAX_FILES = 20
RESOURCES = ("services", "volumes", "secrets", "configs", "networks")
Parse = Callable[[str], dict]  # a compose file's text → its document (raises ComposeError)


class Composition:
    """The files one load reads besides the first, each read and parsed once."""

    def __init__(self, *, files: RepoFiles, parse: Parse, compose_file: str) -> None:
        self.files, self.parse, self.compose_file = files, parse, compose_file
        self.read: dict[str, dict] = {}

    def document(self, path: str, where: str) -> dict:
        if path not in self.read:
            if len(self.read) >= MAX_FILES:
                raise ComposeError([f"{where}: at most {MAX_FILES} compose files in all"])
            try:
                self.read[path] = self.parse(self.files.text(path))
            except PathRefused as refused:
                raise ComposeError([f"{where}: {refused}"]) from None
            except ComposeError as error:
                raise ComposeError([f"{where}: {path}: {problem}" for problem in error.problems]) from None
        return copy.deepcopy(self.read[path])

    # include ---------------------------------------------------------------------------------------

    def include(self, document: dict, *, path: str, chain: tuple[str, ...] = ()) -> dict:
        """`document` (the file at `path`) with the files it includes added, `include` gone."""
        items = document.pop("include", None)
        if items is None or not self.files.available:
            return document
        chain = (*chain, path)
        for index, item in enumerate(items if isinstance(items, list) else [items]):
            where = f"include[{index}]" if isinstance(items, list) else "include"
            self._add(document, self._included(item, where=where, directory=posixpath.dirname(path), chain=chain),
                      where)
        return document

    def _included(self, item, *, where: str, directory: str, chain: tuple[str, ...]) -> dict:
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not item.get("path"):
            raise ComposeError([f"{where}: a path (or a list of paths) of compose files of the repository"])
        for key in set(item) - {"path"}:
            reason = {"env_file": "an included file's variables are the app's environment variables",
                      "project_directory": "an included file's paths are relative to its own directory"}
            raise ComposeError([f"{where}.{key}: not supported: {reason.get(key, 'only path is')}"])
        merged: dict = {}
        for written in item["path"] if isinstance(item["path"], list) else [item["path"]]:
            try:
                path = repo_path(directory, str(written))
            except PathRefused as refused:
                raise ComposeError([f"{where}: {written!r}: {refused}"]) from None
            if path in chain or len(chain) > MAX_DEPTH:
                shown = " → ".join((*chain, path))
                raise ComposeError([f"{where}: {written!r}: " + (f"the files include each other ({shown})"
                                    if path in chain else f"included more than {MAX_DEPTH} files deep")])
            included = self.include(self.document(path, f"{where}: {written!r}"), path=path, chain=chain)
            move_document(included, posixpath.dirname(path) or ".", directory or ".")
            merged = _merged_documents(merged, included)
        return merged

    @staticmethod
    def _add(document: dict, included: dict, where: str) -> None:
        """Compose refuses a resource defined both in a file and in a file it includes."""
        problems = []
        for key in RESOURCES:
            if not included.get(key):
                continue
            if document.get(key) is None:
                document[key] = {}
            mine = document[key]
            for name, definition in (included.get(key) or {}).items():
                if name in mine and mine[name] != definition:
                    problems.append(f"{where}: {key}.{name} is defined both here and in the included file")
                mine[name] = definition
        if problems:
            raise ComposeError(problems)

    # extends ---------------------------------------------------------------------------------------

    def extend(self, document: dict, path: str, environment_of: Callable[[dict], dict]) -> dict:
        """Every service with `extends` merged onto the service it extends. `environment_of`
        interpolates another file's document as this one's was."""
        services = document.get("services") or {}
        directory = posixpath.dirname(path) or "."
        resolved = {name: self._extended(services, name, path=path, directory=directory, chain=(),
                                         environment_of=environment_of) for name in services}
        return {**document, "services": resolved} if services else document

    def _extended(self, services: dict, name: str, *, path: str, directory: str, chain: tuple,
                  environment_of: Callable[[dict], dict]) -> dict:
        definition = services[name] or {}
        extends = definition.get("extends")
        if extends is None:
            return definition
        where = f"services.{name}.extends" + (f" (in {path})" if path != self.compose_file else "")
        extends = {"service": extends} if isinstance(extends, str) else extends
        own = {key: value for key, value in definition.items() if key != "extends"}
        if (path, name) in chain or len(chain) > MAX_DEPTH:
            raise ComposeError([f"{where}: " + ("the services extend each other" if (path, name) in chain
                                                else f"more than {MAX_DEPTH} services deep")])
        other_path, other = path, services
        if "file" in extends:
            if not self.files.available:
                return own  # another file is read at deploy time
            try:
                other_path = repo_path(directory, str(extends["file"]))
            except PathRefused as refused:
                raise ComposeError([f"{where}.file: {extends['file']!r}: {refused}"]) from None
            other = environment_of(self.document(other_path, f"{where}.file")).get("services") or {}
        if extends["service"] not in other:
            raise ComposeError([f"{where}: there is no service {extends['service']!r} in {other_path}"])
        other_directory = posixpath.dirname(other_path) or "."
        base = copy.deepcopy(self._extended(other, extends["service"], path=other_path, directory=other_directory,
                                            chain=(*chain, (path, name)), environment_of=environment_of))
        move_service(base, other_directory, directory)
        return merge_service(base, own)


def _merged_documents(first: dict, second: dict) -> dict:
    """Several paths of one include: later files override earlier ones, service by service."""
    merged = dict(first)
    for key, value in second.items():
        if key == "services" and isinstance(value, dict):
            services = dict(merged.get("services") or {})
            for name, definition in value.items():
                services[name] = merge_service(services[name], definition or {}) if name in services else definition
            merged["services"] = services
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged

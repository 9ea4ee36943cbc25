"""Compose's merge rules, for a service that `extends` another and for an included file given as
several paths: the later definition wins key by key. Mappings merge by key (a list of KEY=VALUE
counts as one), `command`, `entrypoint` and a healthcheck's `test` are replaced whole, volumes,
secrets, configs and ports merge by what they mount or publish, other lists are appended (without
repeats), and any other value is replaced. Also: relative paths moved from one file's directory
to another's, so that a service defined in another file keeps naming the same files."""
import posixpath

REPLACED = {"command", "entrypoint", "healthcheck.test"}
AS_MAPPING = {"environment", "labels", "build.args", "depends_on", "deploy.labels", "annotations", "sysctls",
              "build.labels", "networks"}


def merge_service(base: dict, override: dict) -> dict:
    return _merged_mapping("", _normal_build(base), _normal_build(override))


def _normal_build(service: dict) -> dict:
    return {**service, "build": {"context": service["build"]}} if isinstance(service.get("build"), str) else service


def _merged_mapping(where: str, old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        path = f"{where}.{key}" if where else key
        merged[key] = _merged(path, merged[key], value) if key in merged else value
    return merged


def _merged(path: str, old, new):
    if path in REPLACED:
        return new
    if path in AS_MAPPING:
        return {**_as_mapping(path, old), **_as_mapping(path, new)}
    if path in ("volumes", "secrets", "configs", "ports", "devices"):
        return _merged_by_key(path, old, new)
    if isinstance(old, dict) and isinstance(new, dict):
        return _merged_mapping(path, old, new)
    if isinstance(old, list) and isinstance(new, list):
        return old + [item for item in new if item not in old]
    return new


def _as_mapping(path: str, value) -> dict:
    if isinstance(value, dict):
        return value
    if path == "depends_on":
        return {str(name): {"condition": "service_started"} for name in value or []}
    if path == "networks":
        return {str(name): None for name in value or []}
    pairs = (str(item).partition("=") for item in value or [])
    return {key: (text if separator else None) for key, separator, text in pairs}


def _merged_by_key(path: str, old, new) -> list:
    merged = {_key(path, item): item for item in old or []}
    for item in new or []:
        merged[_key(path, item)] = item
    return list(merged.values())


def _key(path: str, item) -> str:
    """What a mount is known by (where it goes in the container), or a port by what it says."""
    if path == "volumes":
        if isinstance(item, dict):
            return str(item.get("target"))
        parts = str(item).split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    if path in ("secrets", "configs"):
        return str(item.get("target") or item.get("source")) if isinstance(item, dict) else str(item)
    return repr(item)


def moved_path(value, from_dir: str, to_dir: str):
    """A relative path written in a file in `from_dir`, as a file in `to_dir` would write it
    (always starting with '.', so a volume's source stays a path). Anything else is left as it is,
    for the rules to refuse."""
    if not isinstance(value, str) or from_dir == to_dir or value.startswith(("/", "~")) or "://" in value:
        return value
    moved = posixpath.relpath(posixpath.normpath(posixpath.join(from_dir, value)), to_dir)
    return moved if moved.startswith("..") else f"./{moved}"


def move_service(service: dict, from_dir: str, to_dir: str) -> None:
    """A service's relative paths (build context, bind mounts, env_file, extends.file) moved
    from one file's directory to another's, in place."""
    move = lambda value: moved_path(value, from_dir, to_dir)  # noqa: E731
    build = service.get("build")
    if isinstance(build, str):
        service["build"] = move(build)
    elif isinstance(build, dict):
        build["context"] = move(build.get("context", "."))
    if isinstance(service.get("volumes"), list):
        service["volumes"] = [_moved_volume(item, move) for item in service["volumes"]]
    env_file = service.get("env_file")
    if isinstance(env_file, (str, dict)):
        env_file = [env_file]
    if env_file:
        service["env_file"] = [move(item) if isinstance(item, str) else {**item, "path": move(item.get("path"))}
                               for item in env_file]
    if isinstance(service.get("extends"), dict) and "file" in service["extends"]:
        service["extends"] = {**service["extends"], "file": move(service["extends"]["file"])}


def _moved_volume(item, move):
    if isinstance(item, dict):
        return {**item, "source": move(item["source"])} if item.get("type") == "bind" and "source" in item else item
    source, separator, rest = str(item).partition(":")
    return f"{move(source)}:{rest}" if separator and source.startswith(".") else item


def move_document(document: dict, from_dir: str, to_dir: str) -> None:
    """An included file's relative paths, as the including file would write them, in place."""
    if from_dir == to_dir:
        return
    for service in (document.get("services") or {}).values():
        if isinstance(service, dict):
            move_service(service, from_dir, to_dir)
    for key in ("secrets", "configs"):
        for definition in (document.get(key) or {}).values():
            if isinstance(definition, dict) and "file" in definition:
                definition["file"] = moved_path(definition["file"], from_dir, to_dir)

"""A service's own environment: its `env_file`s (files of the repository, in order), then its
`environment` on top, as Compose builds it. The app's environment variables come below both
(engine/companions.py environment_of), as the image's ENV does under Compose."""
from deployments.compose.envfile import EnvFileError, parse_env_file
from deployments.compose.repofiles import Missing, PathRefused, RepoFiles, repo_path


def service_environment(where: str, definition: dict, *, environment: dict[str, str], files: RepoFiles,
                        base_dir: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """A variable given without a value (`- KEY` or `KEY:`) passes the app's own through, as
    Compose passes the shell's; unset there, it is left out."""
    values: dict[str, str | None] = dict(_env_files(f"{where}.env_file", definition.get("env_file"),
                                                   environment=environment, files=files, base_dir=base_dir,
                                                   problems=problems))
    given = definition.get("environment") or {}
    if isinstance(given, list):
        given = dict((item.partition("=")[0], item.partition("=")[2] if "=" in item else None) for item in given)
    values |= {k: environment.get(k) if v is None else v for k, v in given.items()}
    return tuple(sorted((str(k), str(v)) for k, v in values.items() if v is not None))


def _env_files(where: str, value, *, environment: dict[str, str], files: RepoFiles, base_dir: str,
               problems: list[str]) -> dict[str, str]:
    items = [value] if isinstance(value, (str, dict)) else value or []
    values: dict[str, str] = {}
    for item in items:
        item = {"path": item} if isinstance(item, str) else item
        path, required = str(item.get("path", "")), item.get("required", True) is not False
        if item.get("format") not in (None, ""):
            problems.append(f"{where}: {path!r}: format {item.get('format')!r} is not supported (the .env format is)")
            continue
        try:
            text = files.text(repo_path(base_dir, path))
        except Missing as missing:
            if required:
                problems.append(f"{where}: {path!r}: {missing} (or give it as {{path: {path}, required: false}})")
            continue
        except PathRefused as refused:
            problems.append(f"{where}: {path!r}: {refused}")
            continue
        try:
            values |= parse_env_file(text, environment)
        except EnvFileError as error:
            problems.append(f"{where}: {path}: {error}")
    return values

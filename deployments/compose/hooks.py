"""Lifecycle hooks (Compose 2.30+): `post_start` runs in each new container once it started,
`pre_stop` before a container is stopped; each a list of {command, user, privileged,
working_dir, environment}. engine/hooks.py runs them with `docker exec`, confined as the
container is (privileged: true would give the hook what the app's confinement withholds:
refused)."""
import shlex
from dataclasses import dataclass, field

HOOK_KEYS = ("post_start", "pre_stop")
MAX_HOOKS = 10


@dataclass(frozen=True)
class Hook:
    command: tuple[str, ...]
    user: str = ""
    working_dir: str = ""
    environment: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return {"command": list(self.command), "user": self.user, "working_dir": self.working_dir,
                "environment": [list(pair) for pair in self.environment]}

    @classmethod
    def from_dict(cls, stored: dict) -> "Hook":
        return cls(command=tuple(stored["command"]), user=stored.get("user", ""),
                   working_dir=stored.get("working_dir", ""),
                   environment=tuple((key, value) for key, value in stored.get("environment", ())))


@dataclass
class Hooks:
    post_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()
    problems: list[str] = field(default_factory=list)


def read_hooks(where: str, definition: dict) -> Hooks:
    read = Hooks()
    for key in HOOK_KEYS:
        value = definition.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > MAX_HOOKS:
            read.problems.append(f"{where}.{key}: a list (at most {MAX_HOOKS}) of {{command, user, working_dir, "
                                 "environment}}")
            continue
        hooks = tuple(hook for index, item in enumerate(value)
                      if (hook := _hook(f"{where}.{key}[{index}]", item, read.problems)))
        setattr(read, key, hooks)
    return read


def _hook(where: str, item, problems: list[str]) -> Hook | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: a mapping with a command")
        return None
    for key in set(item) - {"command", "user", "privileged", "working_dir", "environment"}:
        problems.append(f"{where}.{key}: not supported by Switchyard")
    if item.get("privileged"):
        problems.append(f"{where}.privileged: not supported: it would loosen the app's confinement "
                        "(a hook runs confined as its container)")
    command = _command(item.get("command"))
    if not command:
        problems.append(f"{where}.command: a command, as a string or a list of strings")
        return None
    return Hook(command=command, user=str(item.get("user", "")), working_dir=str(item.get("working_dir", "")),
                environment=_environment(item.get("environment")))


def _command(value) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(word, (str, int, float)) for word in value):
        return tuple(str(word) for word in value)
    if isinstance(value, str) and value.strip():
        try:
            return tuple(shlex.split(value))
        except ValueError:
            return ()
    return ()


def _environment(value) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list):
        value = dict(str(item).partition("=")[::2] for item in value)
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in value.items()))

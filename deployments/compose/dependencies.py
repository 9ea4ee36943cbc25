"""depends_on as Compose writes it: a list of names, or a mapping whose entries carry a
`condition`, `restart` and `required`. Read into (service, condition) pairs; one-shot services
(those another service waits for with `service_completed_successfully`) are found here too.

- `required: false`: a dependency the file does not define is left out (with a notice), as
  Compose does; a required one that is missing stays a problem (rules.py says so).
- `restart: true`: accepted. Compose restarts the dependent when the dependency is updated;
  Switchyard replaces a release's services together at each deploy, so there is nothing more to do.
"""
from dataclasses import dataclass, field

COMPLETED = "service_completed_successfully"
CONDITIONS = ("service_started", "service_healthy", COMPLETED)


@dataclass
class Dependencies:
    pairs: tuple[tuple[str, str], ...] = ()
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def read_depends_on(where: str, value, *, defined: set[str]) -> Dependencies:
    """(service, condition) pairs of one service's depends_on; `defined`: the file's service names."""
    read = Dependencies()
    if isinstance(value, list):
        value = {name: {} for name in value}
    if not isinstance(value, dict):
        if value is not None:
            read.problems.append(f"{where}.depends_on: a list of service names or a mapping of them")
        return read
    pairs = []
    for name, entry in value.items():
        entry = entry if isinstance(entry, dict) else {}
        condition = entry.get("condition", "service_started")
        if condition not in CONDITIONS:
            read.problems.append(f"{where}.depends_on.{name}.condition: {condition!r}: one of {', '.join(CONDITIONS)}")
            continue
        for key in ("restart", "required"):
            if key in entry and not isinstance(entry[key], bool):
                read.problems.append(f"{where}.depends_on.{name}.{key}: true or false")
        if entry.get("required", True) is False and name not in defined:
            read.notices.append(f"{where}.depends_on.{name}: not in this file and not required: left out")
            continue
        pairs.append((str(name), condition))
    read.pairs = tuple(pairs)
    return read


def one_shot_services(depends_on: dict[str, tuple[tuple[str, str], ...]]) -> set[str]:
    """The services some other service waits for to complete: each runs to its end at each deploy."""
    return {name for pairs in depends_on.values() for name, condition in pairs if condition == COMPLETED}


def chain_services(web: str, depends_on: dict[str, tuple[tuple[str, str], ...]], stateless: set[str]) -> set[str]:
    """The stateless services the web service depends on, directly or through other such services:
    they are replaced blue/green with it (a stateful service or a job ends a chain)."""
    found: set[str] = set()
    waiting = [web]
    while waiting:
        for name, _ in depends_on.get(waiting.pop(), ()):
            if name in stateless and name not in found:
                found.add(name)
                waiting.append(name)
    return found

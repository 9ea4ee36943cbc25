"""Reading values out of a provider's JSON payload, whose shape differs between providers and
between versions of one provider (GitLab's older pushes have no user_username, Bitbucket Server
lists its clone URLs): each helper takes the places a value may be, tolerates any of them missing
or of the wrong type, and returns only strings. Pure functions."""
from collections.abc import Iterable

MAX_URLS = 10  # a payload names its repository a few times; nothing needs more
MAX_TEXT = 500  # what a URL or a name may be, as stored with the delivery


def value_at(payload: dict, path: tuple[str, ...]):
    """payload[path[0]][path[1]]..., or None where a step is missing or not a mapping."""
    current = payload
    for key in path:
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    return current


def first_text(payload: dict, *paths: tuple[str, ...]) -> str:
    """The first non-empty string at any of the paths (e.g. pusher.login, then pusher.username)."""
    for path in paths:
        found = value_at(payload, path)
        if isinstance(found, str) and found.strip():
            return found.strip()[:MAX_TEXT]
    return ""


def repository_urls(payload: dict, paths: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """Every URL the payload names its repository by, in the order of `paths`, without repeats."""
    return _strings(value_at(payload, path) for path in paths)


def bitbucket_server_urls(repository: dict) -> tuple[str, ...]:
    """Bitbucket Server lists links: {"clone": [{"href", "name": "http"|"ssh"}], "self": [{"href"}]}."""
    links = repository.get("links")
    if not isinstance(links, dict):
        return ()
    found = []
    for kind in ("clone", "self"):
        entries = links.get(kind)
        if isinstance(entries, list):
            found += [entry.get("href") for entry in entries if isinstance(entry, dict)]
    return _strings(found)


def _strings(values: Iterable) -> tuple[str, ...]:
    kept = [v.strip()[:MAX_TEXT] for v in values if isinstance(v, str) and v.strip()]
    return tuple(dict.fromkeys(kept))[:MAX_URLS]

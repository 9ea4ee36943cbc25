"""`profiles:` as Compose has them, the app choosing which are active (its setting "Compose
profiles", the names a `docker compose --profile` would get). A service without profiles is
always deployed; one with profiles only when one of them is active. The web service must be
deployed: one left out by the profiles is an error naming it, not a release without a web."""
import re

PROFILE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # Compose's grammar, at most 63
MAX_PROFILES = 10


def profile_names(text: str) -> tuple[str, ...]:
    """The names in the app's setting: separated by spaces and/or commas, each once, in order."""
    return tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", text or "") if part))


def profiles_problem(text: str) -> str:
    """Why the setting is not a list of profile names, or ""."""
    names = profile_names(text)
    if bad := [name for name in names if not PROFILE_NAME.match(name)]:
        return (f"{bad[0]!r} is not a profile name: letters, digits, '_', '.' and '-' (at most 63), "
                "names separated by spaces or commas")
    if len(names) > MAX_PROFILES:
        return f"at most {MAX_PROFILES} profiles"
    return ""


def active_services(services: dict, *, active: tuple[str, ...], web_service: str) -> tuple[dict, list[str], list[str]]:
    """The services the active profiles deploy, the problems, and notices of those left out."""
    kept, left_out = {}, []
    for name, definition in services.items():
        profiles = (definition or {}).get("profiles") or []
        if not profiles or set(map(str, profiles)) & set(active) or name == web_service:  # web: refused below
            kept[name] = definition
        else:
            left_out.append(f"{name} ({', '.join(map(str, profiles))})")
    problems = []
    web = services.get(web_service) or {}
    if web.get("profiles") and not set(map(str, web["profiles"])) & set(active):
        listed = ", ".join(map(str, web["profiles"]))
        problems.append(f"services.{web_service}.profiles: the web service is only in the profiles {listed}, and the "
                        f"app's active profiles are {', '.join(active) or 'none'}: add one of them to the app's "
                        "Compose profiles setting, or take the web service out of profiles")
    notices = [f"services: left out by profiles (active: {', '.join(active) or 'none'}): {', '.join(left_out)}"] \
        if left_out else []
    return kept, problems, notices

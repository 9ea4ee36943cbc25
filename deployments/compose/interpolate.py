"""Compose's variable interpolation: `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
`${NAME:?message}`, `${NAME?message}`, and `$$` for a literal `$`, from the app's environment
variables (Switchyard's equivalent of the shell environment and `.env` that `docker compose`
reads). Applied to every string value of the file, as Compose does.
"""
import re

_REFERENCE = re.compile(r"""
    \$(?:
        (?P<escaped>\$)
      | (?P<bare>[A-Za-z_][A-Za-z0-9_]*)
      | \{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}
      | (?P<invalid>)
    )""", re.VERBOSE)


class InterpolationError(ValueError):
    """A reference that is malformed, or required (`:?`) and unset."""


def interpolate(value, environment: dict[str, str], where: str = ""):
    """`value` with every reference replaced; lists and mappings are walked."""
    if isinstance(value, str):
        return _interpolate_string(value, environment, where)
    if isinstance(value, list):
        return [interpolate(item, environment, where) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, environment, f"{where}.{key}" if where else str(key))
                for key, item in value.items()}
    return value


def _interpolate_string(text: str, environment: dict[str, str], where: str) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["bare"]:
            return environment.get(match["bare"], "")
        if match["braced"]:
            return _braced(match, environment, where)
        raise InterpolationError(f"{where}: invalid variable reference in {text!r} (write $$ for a literal $)")
    return _REFERENCE.sub(replace, text)


def _braced(match: re.Match, environment: dict[str, str], where: str) -> str:
    name, operator, argument = match["braced"], match["operator"], match["argument"] or ""
    value = environment.get(name)
    unset = value is None or (operator is not None and operator.startswith(":") and value == "")
    if operator in ("-", ":-"):
        return argument if unset else value
    if operator in ("?", ":?"):
        if unset:
            raise InterpolationError(f"{where}: {name} must be set in the app's environment variables"
                                     + (f" ({argument})" if argument else ""))
        return value
    return value or ""

"""Compose's small value forms, as the rules read them: a command, KEY=VALUE pairs, a duration."""
import re


def command(value) -> tuple[str, ...] | str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else tuple(str(part) for part in value)


def pairs(value) -> tuple[tuple[str, str], ...]:
    """environment, labels and args come as a mapping or as a list of KEY=VALUE."""
    if isinstance(value, list):
        value = dict(item.partition("=")[::2] for item in value)
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in (value or {}).items()))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(value) -> float | None:
    """Compose's durations: 10s, 1m30s, 500ms (a bare number is seconds)."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)

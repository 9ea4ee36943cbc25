"""A service's `env_file`, parsed as Docker Compose parses .env files: `KEY=VALUE` lines, `export`
before the key allowed, `#` comments (a whole line, or after whitespace in an unquoted value),
single quotes literal, double quotes with \\n \\t \\" \\\\ escapes and spanning lines, `${VAR}`
references in unquoted and double-quoted values (from the lines above, then the app's
environment variables), and a bare `KEY` taking the app's variable of that name if it has one."""
import re

from deployments.compose.interpolate import InterpolationError, interpolate

_KEY = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(=)?\s*", re.ASCII)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}
MAX_VARIABLES = 1000


class EnvFileError(ValueError):
    """A line that is not KEY=VALUE; the message says which."""


def parse_env_file(text: str, environment: dict[str, str]) -> dict[str, str]:
    """The variables of an env file, in order; raises EnvFileError naming the line."""
    values: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    number = 0
    while number < len(lines):
        line = lines[number].strip()
        number += 1
        if not line or line.startswith("#"):
            continue
        match = _KEY.match(line)
        if not match:
            raise EnvFileError(f"line {number}: {line[:40]!r} is not KEY=VALUE")
        key, rest = match[1], line[match.end():]
        if not match[2]:
            if rest and not rest.startswith("#"):
                raise EnvFileError(f"line {number}: {line[:40]!r} is not KEY=VALUE")
            if key in environment:
                values[key] = environment[key]
            continue
        value, number = _value(rest, lines, number)
        values[key] = _interpolated(value, {**environment, **values}, number) if value[:1] != "\0" else value[1:]
        if len(values) > MAX_VARIABLES:
            raise EnvFileError(f"more than {MAX_VARIABLES} variables")
    return values


def _value(rest: str, lines: list[str], number: int) -> tuple[str, int]:
    """The value that starts with `rest` and the number of the next line. A single-quoted value
    comes back marked with a leading NUL: it is not interpolated."""
    if rest.startswith("'"):
        text, number = _quoted(rest, "'", lines, number)
        return "\0" + text, number
    if rest.startswith('"'):
        text, number = _quoted(rest, '"', lines, number)
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], "\\" + m[1]), text, flags=re.DOTALL), number
    return re.split(r"\s+#", rest, maxsplit=1)[0].strip(), number


def _quoted(rest: str, quote: str, lines: list[str], number: int) -> tuple[str, int]:
    """The text between `quote` and the closing one, over several lines if need be."""
    text = rest[1:]
    start = number
    while True:
        end = _closing(text, quote)
        if end >= 0:
            return text[:end], number
        if number >= len(lines):
            raise EnvFileError(f"line {start}: the {quote} quote is not closed")
        text += "\n" + lines[number]
        number += 1


def _closing(text: str, quote: str) -> int:
    index = 0
    while index < len(text):
        if quote == '"' and text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return -1


def _interpolated(value: str, known: dict[str, str], number: int) -> str:
    try:
        return interpolate(value, known, where=f"line {number}")
    except InterpolationError as error:
        raise EnvFileError(str(error)) from None

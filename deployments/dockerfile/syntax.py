"""A Dockerfile's text read into instructions as Docker's parser reads it (moby/buildkit's
frontend/dockerfile/parser, as dockerd 20.10 and later vendor it) — strictly: wherever two
versions of that parser, or it and this module, could read the same bytes differently, the file
is refused with the line and what to change, instead of being guessed at.

- lines end at "\\n" only (a final "\\r" is dropped); a character that some reader may take for a
  line end (a carriage return inside a line, vertical tab, form feed, U+001C-U+001F, U+0085,
  U+2028, U+2029, NUL) is refused wherever it is;
- parser directives are refused (`# syntax=` picks a frontend; `# escape=` is read by some
  versions after a comment and by others not), except `# escape=\\` as the first line: a no-op;
- a line continues when it ends with a backslash and spaces or tabs; a backslash followed by
  any other space character, or an escaped backslash at the end, is refused;
- comment lines are dropped, also inside a continued instruction; a line may be indented with
  spaces and tabs only.

The check then renders each Instruction on one line (its keyword and arguments as joined here):
that canonical file, without directives or comments, is what dockerd builds.
"""
import re
import unicodedata
from dataclasses import dataclass


class Refused(Exception):
    """The Dockerfile asks for something no tenant may have, or is written so that Docker could read
    it otherwise than the check did; the message says what to change."""


ESCAPE = "\\"
# Taken for a line end by some reader (Python's splitlines, Go's scanner, editors): refused everywhere.
LINE_BREAKS = "\r\v\f\x1c\x1d\x1e\x1f\x85\u2028\u2029\x00"
CONTINUATION = re.compile(r"\\[ \t]*$")  # Docker's, for the backslash escape character
DIRECTIVE = re.compile(r"#\s*([a-z][a-z0-9]*)\s*=(.*)$", re.ASCII | re.IGNORECASE)
# Docker's own Dockerfile frontend, the one `# syntax=` line common in the wild: dropped, not refused.
OFFICIAL_FRONTEND = re.compile(r"(docker\.io/)?docker/dockerfile:[0-9][0-9a-z.-]*", re.ASCII)
KEYWORD = re.compile(r"[A-Za-z]+")
FLAG = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=[^\s'\"\\]*)?")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # everything after the keyword, continuation lines joined as Docker joins them
    line: int  # where it starts, from 1

    def render(self, args: str | None = None) -> str:
        """One line of the canonical Dockerfile (with other arguments, if given)."""
        args = self.args if args is None else args
        return f"{self.keyword} {args}" if args else self.keyword


def parse(text: str) -> list[Instruction]:
    """The instructions, in order; Refused where Docker's reading could differ from this one."""
    lines = [line.rstrip("\r") for line in text.removeprefix("\ufeff").split("\n")]
    for number, line in enumerate(lines, 1):
        _refuse_line_breaks(line, number)
    _refuse_directives(lines)
    instructions, index = [], 0
    while index < len(lines):
        start, first = index + 1, _unindented(lines[index], index + 1)
        index += 1
        if not first or first.startswith("#"):
            continue
        joined, continued = _continued(first, start)
        while continued and index < len(lines):
            raw, number = lines[index], index + 1
            index += 1
            if _unindented(raw, number).startswith("#") or not raw.strip(" \t"):
                continue  # a comment or an empty line inside a continued instruction: Docker skips both
            part, continued = _continued(raw, number)
            joined += part
        try:
            instructions.append(instruction(joined, start))
        except Refused as refused:
            raise Refused(f"line {start}: {refused}") from None
    return instructions


def instruction(text: str, line: int) -> Instruction:
    """One instruction's text (already joined): its keyword and arguments."""
    keyword, *rest = re.split(r"[ \t]+", text.strip(" \t"), maxsplit=1)
    args = rest[0] if rest else ""
    if not KEYWORD.fullmatch(keyword):
        raise Refused(f"unknown instruction {keyword[:40]!r}")
    return Instruction(keyword.upper(), args, line)


def _refuse_line_breaks(line: str, number: int) -> None:
    for ch in line:
        if ch in LINE_BREAKS:
            raise Refused(f"line {number}: the character {_named(ch)} may end a line for one parser and not for "
                          "another: remove it (inside a RUN command, write it as an escape sequence such as \\f)")


def _refuse_directives(lines: list[str]) -> None:
    """Parser directives count only above the first instruction; refused there, but for the two
    that change nothing here, when they open the file: Docker's own frontend named by `# syntax=`
    (this builder reads the file itself and its canonical copy has no directives) and `# escape=\\`."""
    leading = True  # only directives so far: Docker reads a directive after a comment as a comment
    for number, line in enumerate(lines, 1):
        stripped = line.strip(" \t")
        if stripped and not stripped.startswith("#"):
            return
        directive = DIRECTIVE.fullmatch(stripped)
        if not directive:
            leading = False
            continue
        key, value = directive.group(1).lower(), directive.group(2).strip(" \t")
        if key == "syntax" and not (leading and OFFICIAL_FRONTEND.fullmatch(value)):
            raise Refused(f"line {number}: the `# syntax=` directive picks the build's frontend, and Switchyard "
                          "builds with Docker's own Dockerfile parser: remove the line (only "
                          "`# syntax=docker/dockerfile:<version>` as the first line is accepted)")
        if key == "escape" and not (leading and value == ESCAPE):
            raise Refused(f"line {number}: the `# escape=` directive is not supported (Switchyard builds the "
                          "Dockerfile with Docker's default escape character, the backslash): remove the line "
                          "and write paths with / and line continuations with \\")


def _unindented(line: str, number: int) -> str:
    stripped = line.lstrip(" \t")
    if stripped and _is_space(stripped[0]):
        raise Refused(f"line {number}: the line starts with the space character {_named(stripped[0])}: "
                      "indent with spaces or tabs only")
    return stripped


def _continued(line: str, number: int) -> tuple[str, bool]:
    """The line without its continuation, and whether the instruction goes on on the next line."""
    found = CONTINUATION.search(line)
    if found:
        body = line[:found.start()]
        if body.endswith(ESCAPE):
            raise Refused(f"line {number}: the line ends with an escaped backslash, which Docker versions read "
                          "differently (a continuation or not): put the backslash elsewhere or add a space")
        return body, True
    trimmed = line.rstrip()
    if trimmed.endswith(ESCAPE) and trimmed != line.rstrip(" \t"):
        odd = next(ch for ch in line[len(trimmed):] if ch not in " \t")
        raise Refused(f"line {number}: the line ends with a backslash followed by {_named(odd)}: only spaces "
                      "or tabs may follow a line continuation; remove that character")
    return line, False


def words(args: str) -> list[str]:
    """Words split at spaces and tabs outside quotes, quotes and escapes kept (Docker's parseWords,
    for ARG and ENV; other space characters are refused by the check before this is asked)."""
    found, word, quote, index, started = [], "", "", 0, False
    while index < len(args):
        ch = args[index]
        index += 1
        if not quote and ch in " \t":
            if started:
                found.append(word)
            word, started = "", False
            continue
        started = True
        if ch == ESCAPE and quote != "'" and index < len(args):
            word += ch + args[index]
            index += 1
            continue
        if ch == ESCAPE and quote != "'":
            continue  # an escape at the end of the line is dropped
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        word += ch
    if started:
        found.append(word)
    return found


def flags(args: str, keyword: str) -> tuple[list[str], str]:
    """The leading --name=value flags and the rest. Flags with quotes or backslashes are refused:
    Docker reads them with rules of their own."""
    found = []
    rest = args
    while rest.startswith("--"):
        word, _, after = rest.replace("\t", " ").partition(" ")
        if word == "--":
            raise Refused(f"{keyword} --: end the flags without --")
        if not FLAG.fullmatch(word):
            raise Refused(f"{keyword} {word[:60]}: write the flag as --name=value, without quotes, "
                          "backslashes or spaces")
        found.append(word)
        rest = rest[len(word):].lstrip(" \t")
    return found, rest


def _is_space(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) == "Zs"


def _named(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'a control character').lower()})"

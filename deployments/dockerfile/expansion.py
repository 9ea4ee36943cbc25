"""Docker's word expansion (moby/buildkit frontend/dockerfile/shell), for the instructions whose
values the check must know exactly: FROM, ADD, COPY, ARG and ENV.

Only what every Docker version reads alike is modelled, the rest is refused with what to write
instead: quotes, the backslash escape, `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME:+word}`,
`${NAME-word}` and `${NAME+word}`, with ASCII names. Refused: special parameters (`$-`, `$@`,
`$$`, `$1` ... which Docker versions expand to nothing or keep), names with other letters or
digits (`$a²`: Go stops the name where Python would not), other modifiers (`${a%b}`, `${a:?}`),
unterminated quotes. A `$` before anything that can never start a name stays a `$`, as in Docker.
"""
from dataclasses import dataclass, field

from deployments.dockerfile.syntax import ESCAPE, Refused

DOLLAR_HINT = "write a literal $ as \\$, and variables as $NAME or ${NAME} with letters, digits and _"


@dataclass
class Expansion:
    value: str
    names: set[str] = field(default_factory=set)  # the variables it refers to


def expand(word: str, variables: dict[str, str]) -> Expansion:
    """`word` expanded as Docker would with these variables (the set ones only); Refused where
    Docker versions (or this module and Docker) could disagree."""
    expander = _Expander(word, variables)
    return Expansion(expander.word(), expander.names)


def _name_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_")


def _name_part(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _may_start_a_name(ch: str) -> bool:
    """In some Docker version: a letter or digit of any script, _, or a special parameter."""
    return ch.isalnum() or ch in "_{@*#?-$!" or not ch.isascii()


class _Expander:
    def __init__(self, text: str, variables: dict[str, str]) -> None:
        self.text, self.at, self.variables, self.names = text, 0, variables, set()

    def _next(self) -> str:
        ch = self.text[self.at:self.at + 1]
        self.at += 1
        return ch

    def _peek(self) -> str:
        return self.text[self.at:self.at + 1]

    def word(self, stop: str = "") -> str:
        out = []
        while self.at < len(self.text):
            ch = self._next()
            if stop and ch == stop:
                return "".join(out)
            if ch == ESCAPE:
                out.append(self._next())  # a final escape is dropped, as in Docker
            elif ch == "'":
                out.append(self._single_quoted())
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
        if stop:
            raise Refused(f"{self.text!r}: ${{ without its closing }}")
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.at)
        if end < 0:
            raise Refused(f"{self.text!r}: a single quote is not closed")
        value, self.at = self.text[self.at:end], end + 1
        return value

    def _double_quoted(self) -> str:
        out = []
        while self.at < len(self.text):
            ch = self._next()
            if ch == '"':
                return "".join(out)
            if ch == ESCAPE and self._peek() in ('"', "$", ESCAPE) and self._peek():
                out.append(self._next())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
        raise Refused(f"{self.text!r}: a double quote is not closed")

    def _name(self) -> str:
        start = self.at
        while self.at < len(self.text) and _name_part(self.text[self.at]):
            self.at += 1
        name = self.text[start:self.at]
        if self._peek() and not self._peek().isascii():
            raise Refused(f"{self.text!r}: the variable name ${name} is followed by {self._peek()!r}, which some "
                          f"Docker versions read as part of the name: {DOLLAR_HINT}")
        self.names.add(name)
        return name

    def _dollar(self) -> str:
        ch = self._peek()
        if ch == "{":
            self.at += 1
            return self._braced()
        if _name_start(ch):
            return self.variables.get(self._name(), "")
        if ch and _may_start_a_name(ch):
            raise Refused(f"{self.text!r}: ${ch} is not a variable Switchyard can read as Docker does: {DOLLAR_HINT}")
        return "$"

    def _braced(self) -> str:
        if not _name_start(self._peek()):
            raise Refused(f"{self.text!r}: ${{{self._peek()}...}} is not a variable Switchyard can read as Docker "
                          f"does: {DOLLAR_HINT}")
        name = self._name()
        ch = self._next()
        if ch == "}":
            return self.variables.get(name, "")
        colon = ch == ":"
        modifier = self._next() if colon else ch
        if modifier not in ("-", "+"):
            raise Refused(f"{self.text!r}: ${{{name}{ch}{modifier if colon else ''}...}} is not supported: use "
                          f"${{{name}:-default}} or ${{{name}:+alternative}}")
        word = self.word(stop="}")
        is_set = bool(self.variables.get(name)) if colon else name in self.variables
        if modifier == "-":
            return self.variables.get(name, "") if is_set else word
        return word if is_set else ""

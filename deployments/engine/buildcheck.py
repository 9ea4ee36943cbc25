"""What a Dockerfile may ask of the Docker daemon, checked before any build starts.

The daemon runs a build with the host's rights: a remote `ADD` is fetched by dockerd itself on
the host's network (loopback services, the metadata address, the LAN), and `FROM` / `COPY
--from` / `RUN --mount=from=` read any image the daemon has (another app's, the panel's). So:

- a remote `ADD` (http, https, git), after ARG/ENV expansion, is refused: a download belongs in a
  RUN step, whose container sits on the app's network under the egress rules (engine/egress.py);
- every image named is resolved as Docker would resolve it (tag, ID, short ID, digest) and
  refused unless it is this app's own, or carries no Switchyard label and a tag outside the
  panel's `switchyard*` names; a registry on a loopback or private address is refused too;
- ONBUILD triggers (written here, or inherited from a base image) are checked the same way;
- an instruction the check does not know is refused (Docker would refuse it as well), so a
  spelling that this parser and Docker's read differently cannot slip an ADD through.

The Dockerfile's lines are split by `dockerfile-parse`; variable expansion follows Docker's own
rules ($VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}, quotes, the escape character), since the
library's simplified expansion would read `${U:-http:}//host/` differently from Docker.
"""
import io
import ipaddress
import json
import posixpath
import socket
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter

# runtime's labels (runtime imports this module, for Image; this one stays free of docker)
LABEL_INSTANCE = "switchyard.instance"
LABEL_APP = "switchyard.app"
LABEL_APP_ID = "switchyard.app-id"
PANEL_REPOSITORY_PREFIX = "switchyard"  # switchyard:local, switchyard-base:bookworm, switchyard/<app> ...
MAX_DOCKERFILE_BYTES = 1024 * 1024
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
DOWNLOAD_HINT = ("download it inside a RUN step instead (e.g. RUN wget -O /path URL), where the build's "
                 "network rules apply; ADD may only copy files of the repository")


class Refused(Exception):
    """The Dockerfile asks for something no tenant may have; the message says what and why."""


@dataclass(frozen=True)
class Image:
    """What Docker knows of an image, as far as the check needs it (runtime.image_facts)."""
    id: str
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    onbuild: tuple[str, ...] = ()


@dataclass(frozen=True)
class Owner:
    """Whose build this is: its images are the only Switchyard images it may start from."""
    app: str
    app_id: int
    instance: str


Inspect = Callable[[str], Image | None]  # a reference, as Docker resolves it; None if Docker has no such image


def dockerfile_from_context(context_tar: bytes | BinaryIO, dockerfile: str) -> str:
    """The Dockerfile as dockerd will read it from the build context (links followed inside it);
    the context as bytes or as a seekable tar file."""
    name = posixpath.normpath(dockerfile or "Dockerfile").lstrip("/")
    if name.startswith(".."):
        raise Refused(f"the Dockerfile {dockerfile!r} is outside the build context")
    try:
        fileobj = io.BytesIO(context_tar) if isinstance(context_tar, bytes) else context_tar
        with tarfile.open(fileobj=fileobj) as archive:
            member = archive.getmember(name)
            if member.size > MAX_DOCKERFILE_BYTES:
                raise Refused(f"{dockerfile} is larger than {MAX_DOCKERFILE_BYTES // 1024} KiB")
            handle = archive.extractfile(member)
            data = handle.read(MAX_DOCKERFILE_BYTES + 1) if handle else b""
    except (KeyError, tarfile.TarError) as error:
        raise Refused(f"there is no Dockerfile {dockerfile!r} in the build context ({error})") from None
    if len(data) > MAX_DOCKERFILE_BYTES:
        raise Refused(f"{dockerfile} is larger than {MAX_DOCKERFILE_BYTES // 1024} KiB")
    return data.decode("utf-8", errors="replace")


def check(text: str, *, owner: Owner, build_args: dict[str, str], inspect: Inspect,
          resolve_host: Callable[[str], list[str]] | None = None) -> list[str]:
    """Raise Refused at the first instruction no tenant may use; return the images used (for the log).

    Steps: split the instructions (dockerfile-parse); follow the stages, their ARG and ENV
    values and the base images' ENV as Docker does; check each ADD, FROM, COPY --from,
    RUN --mount=from= and ONBUILD trigger with the values Docker would expand them with."""
    return _Walk(text, owner, build_args, inspect, resolve_host or _addresses).run()


class _Walk:
    def __init__(self, text: str, owner: Owner, build_args: dict[str, str], inspect: Inspect,
                 resolve_host: Callable[[str], list[str]]) -> None:
        text = text.lstrip("\ufeff")  # Docker skips a byte-order mark; unstripped it would hide the first instruction
        self.parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
        self.escape = _escape_character(text)
        self.owner, self.build_args, self.inspect, self.resolve_host = owner, build_args, inspect, resolve_host
        self.meta_args: dict[str, str] = {}  # ARGs before the first FROM
        self.stages: list[tuple[str, dict[str, str]]] = []  # (name, ENV at the stage's end)
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.used: list[str] = []

    def run(self) -> list[str]:
        for instruction in self.parser.structure:
            name, value, line = instruction["instruction"], instruction["value"], instruction["startline"] + 1
            if name == "COMMENT":
                continue
            try:
                self._instruction(name, value, line)
            except Refused as refused:
                raise Refused(f"Dockerfile line {line}: {refused}") from None
        self._end_stage()
        return self.used

    def _instruction(self, name: str, value: str, line: int, trigger: bool = False) -> None:
        if name not in INSTRUCTIONS:
            raise Refused(f"unknown instruction {name[:40]!r}")
        if name == "FROM" and not trigger:
            self._from(value)
        elif not self.stages and name != "ARG":
            raise Refused(f"{name} before the first FROM")
        elif name == "ARG":
            self._arg(value)
        elif name == "ENV":
            for key, raw in _key_values(value):
                self.env[key] = self.expand(raw)
        elif name == "ADD":
            self._add(value)
        elif name == "COPY":
            self._from_flag(_flags(value).get("from"), "COPY --from")
        elif name == "RUN":
            for mount in _flags(value, repeated="mount"):
                options = dict(part.split("=", 1) for part in mount.split(",") if "=" in part)
                self._from_flag(options.get("from"), "RUN --mount from")
        elif name == "ONBUILD":
            inner, rest = (value.split(None, 1) + [""])[:2]
            if inner.upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                raise Refused(f"ONBUILD {inner.upper()} is not allowed")
            if inner.upper() in ("ADD", "COPY", "RUN") and "$" in rest:
                # The trigger runs in a later build, with that build's variables: they are unknown here.
                raise Refused(f"ONBUILD {inner.upper()} with variables cannot be checked: write the value out")
            self._instruction(inner.upper(), rest, line, trigger=True)

    # -- stages and images -------------------------------------------------------------------

    def _from(self, value: str) -> None:
        self._end_stage()
        words = [w for w in value.split() if not w.startswith("--")]  # --platform=...
        if not words:
            raise Refused("FROM names no image")
        stage = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
        reference = self._expand_with(words[0], self.meta_args)
        earlier = self._stage(reference, by_number=False)
        image = None
        if earlier is None and reference.lower() != "scratch":
            image = self._image(reference, "FROM")
        self.args, self.env = {}, dict(earlier or (image.env if image else {}))
        self.stages.append((stage.lower(), {}))
        for trigger in image.onbuild if image else ():  # they run right after FROM, in this stage
            inner, rest = (trigger.split(None, 1) + [""])[:2]
            try:
                self._instruction(inner.upper(), rest, 0, trigger=True)
            except Refused as refused:
                raise Refused(f"{reference} has an ONBUILD trigger that is refused: {refused}") from None

    def _end_stage(self) -> None:
        if self.stages:
            self.stages[-1] = (self.stages[-1][0], dict(self.env))

    def _stage(self, reference: str, by_number: bool = True) -> dict[str, str] | None:
        """An earlier stage named `reference` (or numbered, for COPY --from=0): its ENV; None if it is none."""
        for index, (name, env) in enumerate(self.stages):
            if reference and (reference.lower() == name or (by_number and reference == str(index))):
                return env
        return None

    def _from_flag(self, raw: str | None, what: str) -> None:
        if raw is None:
            return
        for reference in {raw, self.expand(raw)}:  # Docker's builders differ on expanding --from: check both
            if reference and "$" not in reference and self._stage(reference) is None:
                self._image(reference, what)

    def _image(self, reference: str, what: str) -> Image | None:
        """Refused unless this app may read it; None when Docker does not have it (it would pull it)."""
        if reference.startswith("-") or any(ch.isspace() for ch in reference):
            raise Refused(f"{what} {reference!r} is not an image reference")
        image = self.inspect(reference)
        if image is None:
            self._registry_host(reference, what)
            if reference.split("/", 1)[0].split(":", 1)[0].split("@", 1)[0].lower().startswith(PANEL_REPOSITORY_PREFIX):
                raise Refused(f"{what} {reference}: there is no such image, and names starting with "
                              f"{PANEL_REPOSITORY_PREFIX!r} belong to the panel and its apps")
            self.used.append(f"{reference} (not here: it would be pulled)")
            return None
        reason = self._not_yours(image)
        if reason:
            raise Refused(f"{what} {reference}: {reason}; an app may build only from its own images, public "
                          "images or stages of its own Dockerfile")
        self.used.append(reference)
        return image

    def _not_yours(self, image: Image) -> str:
        labels = image.labels
        if LABEL_APP in labels:
            app_id = labels.get(LABEL_APP_ID)
            if (labels[LABEL_APP] == self.owner.app and labels.get(LABEL_INSTANCE) == self.owner.instance
                    and app_id in (None, str(self.owner.app_id))):
                return ""
            return "that image belongs to another app"
        if LABEL_INSTANCE in labels or "switchyard.panel" in labels:
            return "that image is one of the panel's own"
        if not image.tags:
            return "that image has no tag and is not this app's (an intermediate layer of some build)"
        if any(_repository(tag).startswith(PANEL_REPOSITORY_PREFIX) for tag in image.tags):
            return "that image is one of the panel's own"
        return ""

    def _registry_host(self, reference: str, what: str) -> None:
        """A pull from a registry on loopback or a private address is the daemon talking to the host's
        own network (Docker even speaks plain HTTP to a 127.0.0.0/8 registry)."""
        first, slash, _ = reference.partition("/")
        if not slash or not ("." in first or ":" in first or first.lower() == "localhost"):
            return  # Docker Hub
        host = first.rsplit(":", 1)[0] if not first.startswith("[") else first[1:first.find("]")]
        addresses = ["127.0.0.1"] if host.lower() == "localhost" else self.resolve_host(host)
        private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
        if private:
            raise Refused(f"{what} {reference}: the registry {host} is at a private address ({private[0]}); "
                          "the build host's own network is not for tenants")

    # -- ARG, ENV, ADD ------------------------------------------------------------------------

    def _arg(self, value: str) -> None:
        for word in WordSplitter(value).split(dequote=False):  # quotes kept: expanded below as Docker does
            key, equals, default = word.partition("=")
            if not self.stages:
                given = self.build_args.get(key, self._expand_with(default, self.meta_args) if equals else "")
                self.meta_args[key] = given
            elif key in self.build_args:
                self.args[key] = self.build_args[key]
            elif equals:
                self.args[key] = self.expand(default)
            elif key in self.meta_args:
                self.args[key] = self.meta_args[key]

    def _add(self, value: str) -> None:
        words = _json_words(value)
        expanded = [self.expand(w) for w in words] if words is not None else self.expand(value).split()
        for word in expanded:
            lowered = word.lower()
            if "://" in lowered or lowered.startswith(("git@", "github.com/")):
                raise Refused(f"ADD {word} fetches from a URL, on the build host's own network: {DOWNLOAD_HINT}")

    def expand(self, word: str) -> str:
        return self._expand_with(word, {**self.args, **self.env})  # ENV wins over ARG, as in Docker

    def _expand_with(self, word: str, variables: dict[str, str]) -> str:
        return _Expander(word, variables, self.escape).word()


class _Expander:
    """Docker's word expansion (moby/buildkit frontend/dockerfile/shell): quotes removed, the
    escape character, $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}; anything else is refused."""

    def __init__(self, text: str, variables: dict[str, str], escape: str) -> None:
        self.text, self.at, self.variables, self.escape = text, 0, variables, escape

    def _next(self) -> str:
        ch = self.text[self.at:self.at + 1]
        self.at += 1
        return ch

    def _peek(self) -> str:
        return self.text[self.at:self.at + 1]

    def word(self, stop: str = "") -> str:
        out = []
        while self.at < len(self.text):
            ch = self._peek()
            if stop and ch == stop:
                self.at += 1
                return "".join(out)
            self.at += 1
            if ch == self.escape:
                out.append(self._next())
            elif ch == "'":
                end = self.text.find("'", self.at)
                end = len(self.text) if end < 0 else end
                out.append(self.text[self.at:end])
                self.at = end + 1
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
        if stop:
            raise Refused(f"unterminated ${{...}} in {self.text!r}")
        return "".join(out)

    def _double_quoted(self) -> str:
        out = []
        while self.at < len(self.text):
            ch = self._next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self._peek() in ('"', "$", self.escape):
                out.append(self._next())
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
        return "".join(out)

    def _name(self) -> str:
        start = self.at
        while self.at < len(self.text) and (self.text[self.at].isalnum() or self.text[self.at] == "_"):
            self.at += 1
        return self.text[start:self.at]

    def _dollar(self) -> str:
        if self._peek() != "{":
            name = self._name()
            return self.variables.get(name, "") if name else "$"
        self.at += 1
        name = self._name()
        ch = self._next()
        if ch == "}":
            return self.variables.get(name, "")
        if ch == ":" and self._peek() in ("-", "+"):
            modifier = self._next()
            word = self.word(stop="}")
            value = self.variables.get(name, "")
            if modifier == "-":
                return value or word
            return word if value else ""
        raise Refused(f"the variable expansion in {self.text!r} is not one Docker's classic builder supports")


def _escape_character(text: str) -> str:
    """The `# escape=` parser directive, if the file starts with one (Docker reads only leading ones)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        key, equals, value = stripped[1:].partition("=")
        if not equals:
            break
        if key.strip().lower() == "escape" and value.strip() in ("\\", "`"):
            return value.strip()
    return "\\"


def _key_values(value: str) -> list[tuple[str, str]]:
    """ENV's pairs, values still unexpanded (ENV a=b c=d, or the old ENV a some words)."""
    words = list(WordSplitter(value).split(dequote=False))
    if not words:
        return []
    if "=" not in words[0]:
        key, _, rest = value.strip().partition(" ")
        return [(key, rest.strip())]
    return [(WordSplitter(k).dequote(), v) for k, _, v in (w.partition("=") for w in words)]


def _flags(value: str, repeated: str = "") -> dict[str, str] | list[str]:
    """The leading --name=value flags of an instruction (RUN --mount may repeat: then a list of it)."""
    flags: dict[str, str] = {}
    found: list[str] = []
    for word in WordSplitter(value).split():
        if not word.startswith("--"):
            break
        key, _, flag = word[2:].partition("=")
        if key == repeated:
            found.append(flag)
        flags[key] = flag
    return found if repeated else flags


def _json_words(value: str) -> list[str] | None:
    stripped = value.strip()
    if not stripped.startswith("["):
        return None
    try:
        words = json.loads(stripped)
    except ValueError:
        return None
    return [str(w) for w in words] if isinstance(words, list) else None


def _repository(tag: str) -> str:
    name = tag.rsplit("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return name.lower()


def _addresses(host: str) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError):
        return []  # not resolvable: the pull fails, nothing on the host is reached


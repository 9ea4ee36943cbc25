"""What a Dockerfile may ask of the Docker daemon, checked before any build starts; and the
Dockerfile the daemon then builds instead of the tenant's.

The daemon runs a build with the host's rights: a remote `ADD` is fetched by dockerd itself on
the host's network (loopback services, the metadata address, the LAN), and `FROM` / `COPY
--from` read any image the daemon has (another app's, the panel's). So:

- a remote `ADD` (http, https, git), after ARG/ENV expansion, is refused: a download belongs in a
  RUN step, whose container sits on the app's network under the egress rules (engine/egress.py);
  a variable in ADD must be an ARG or ENV of its stage (Docker hands its predefined proxy
  variables to ADD without one), and those proxy variables are refused as build args;
- every image named is resolved (pulled if need be) and refused unless this app may use it
  (base_images.py); ONBUILD triggers, written or inherited, are checked the same way;
- an instruction the check does not know is refused (Docker would refuse it as well).

What the check reads and what dockerd reads must not differ, or a spelling read one way here and
another way there slips an ADD or an image through. The file is read strictly (syntax.py,
expansion.py), and dockerd builds the canonical Dockerfile
rendered here from what was read (build_context.py puts it in the context): no parser
directives, no comments, one line per instruction; every stage renamed `stage-N` and every
reference to a stage rewritten; every image of a FROM or COPY --from named by the ID the check
resolved, so the daemon resolves no name at build time.
"""
import json
import re
import unicodedata
from dataclasses import dataclass, field

from deployments.dockerfile import syntax
from deployments.dockerd.values import Image
from deployments.dockerfile.base_images import ImageResolver, Inspect, Owner, Pull
from deployments.dockerfile.expansion import expand
from deployments.dockerfile.syntax import Instruction, Refused

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
ASCII_ONLY = {"FROM", "ADD", "COPY"}  # whose arguments name files, URLs and images
NO_ODD_SPACES = {"ARG", "ENV"}  # split into words by Docker at any Unicode space: only spaces and tabs here
NOT_IN_TRIGGERS = {"ONBUILD", "FROM", "MAINTAINER"}  # Docker refuses these as ONBUILD triggers too
PROXY_ARGS = {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"}  # Docker's predefined ARGs, any case
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STAGE_NAME = re.compile(r"[a-z][a-z0-9._-]*")
OUR_STAGE = re.compile(r"stage-[0-9]+|[0-9]+")
DOWNLOAD_HINT = ("download it inside a RUN step instead (e.g. RUN wget -O /path URL), where the build's "
                 "network rules apply; ADD may only copy files of the repository")


@dataclass(frozen=True)
class Checked:
    """A Dockerfile that passed: what dockerd builds, the images it uses (for the log), and each
    named stage's name in the canonical file."""
    dockerfile: str
    images: tuple[str, ...]
    stages: dict[str, str]

    def target(self, name: str) -> str:
        """The canonical name of a build target (Compose's build.target) given by its name in the tenant's file."""
        if not name:
            return ""
        if name.lower() not in self.stages:
            raise Refused(f"the build target {name!r} is no stage of the Dockerfile (FROM ... AS {name})")
        return self.stages[name.lower()]


def check(text: str, *, owner: Owner, build_args: dict[str, str], inspect: Inspect, pull: Pull | None = None,
          resolve_host=None, registries: tuple[str, ...] | None = None,
          trusted_private: tuple[str, ...] = ()) -> Checked:
    """Raise Refused at the first instruction no tenant may use, or that Docker could read otherwise;
    return the canonical Dockerfile to build instead.

    Steps: refuse proxy build args; read the instructions (syntax.py); follow the stages,
    their ARG and ENV values and the base images' ENV as Docker does; check each ADD, FROM,
    COPY --from, RUN --mount and ONBUILD trigger with the values Docker would expand them with;
    render each instruction on one line, stages renamed and images pinned by ID."""
    for key in build_args:
        if key.upper() in PROXY_ARGS:
            raise Refused(f"the build arg {key} is one of Docker's predefined proxy variables, which Docker hands to "
                          "ADD without an ARG line: remove it from build.args (RUN steps may set a proxy themselves)")
    return _Walk(ImageResolver(owner, inspect, pull, resolve_host, registries, trusted_private), build_args).run(text)


@dataclass
class _Stage:
    ours: str  # stage-N
    name: str  # the tenant's, lower case; "" for none
    env: dict[str, str] = field(default_factory=dict)  # ENV at the stage's end
    triggers: list[Instruction] = field(default_factory=list)  # its ONBUILD ones: they run in a stage FROM it


class _Walk:
    def __init__(self, images: ImageResolver, build_args: dict[str, str]) -> None:
        self.images, self.build_args = images, build_args
        self.meta_args: dict[str, str] = {}  # ARGs before the first FROM (set ones only)
        self.stages: list[_Stage] = []
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.declared: set[str] = set()  # the stage's ARG and ENV names, the base image's ENV
        self.used: list[str] = []

    def run(self, text: str) -> Checked:
        try:
            instructions = syntax.parse(text)
        except Refused as refused:
            raise Refused(f"Dockerfile {refused}") from None
        lines = []
        for instruction in instructions:
            try:
                lines.append(self._instruction(instruction))
            except Refused as refused:
                raise Refused(f"Dockerfile line {instruction.line}: {refused}") from None
        if not self.stages:
            raise Refused("the Dockerfile has no FROM")
        self.stages[-1].env = dict(self.env)
        return Checked("\n".join(lines) + "\n", tuple(self.used), {s.name: s.ours for s in self.stages if s.name})

    def _instruction(self, instruction: Instruction) -> str:
        """The instruction's canonical line, once checked."""
        keyword = instruction.keyword
        if keyword not in INSTRUCTIONS:
            raise Refused(f"unknown instruction {keyword[:40]!r}")
        _refuse_odd_characters(instruction)
        if keyword == "FROM":
            return self._from(instruction)
        if not self.stages and keyword != "ARG":
            raise Refused(f"{keyword} before the first FROM")
        if keyword == "ONBUILD":
            inner = syntax.instruction(instruction.args, instruction.line)
            self.stages[-1].triggers.append(inner)
            return instruction.render(self._trigger(inner, runs_here=False))
        handler = {"ARG": self._arg, "ENV": self._env, "ADD": self._add, "COPY": self._copy, "RUN": self._run}
        return handler[keyword](instruction) if keyword in handler else instruction.render()

    # -- stages and images -------------------------------------------------------------------

    def _from(self, instruction: Instruction) -> str:
        if self.stages:
            self.stages[-1].env = dict(self.env)
        options, rest = syntax.flags(instruction.args, "FROM")
        if any(not option.startswith("--platform=") for option in options):
            raise Refused("FROM takes no flag but --platform")
        words = rest.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise Refused("FROM takes an image, optionally followed by AS and a stage name")
        name = words[2].lower() if len(words) == 3 else ""
        if name and (not STAGE_NAME.fullmatch(name) or any(stage.name == name for stage in self.stages)):
            raise Refused(f"FROM ... AS {words[2]}: a stage name is a letter, then letters, digits, '.', '_' or '-', "
                          "and each stage has its own")
        reference = expand(words[0], self.meta_args).value
        if not reference:
            raise Refused(f"FROM {words[0]} expands to nothing: give the variable a default before the first FROM "
                          "(ARG NAME=image) or pass it as a build arg")
        earlier, image, triggers = _stage_named(self.stages, reference), None, []
        if earlier:
            base, self.env, triggers = earlier.ours, dict(earlier.env), earlier.triggers
        elif reference == "scratch":
            base, self.env = "scratch", {}
        else:
            image = self._image(reference, "FROM")
            base, self.env = image.id, dict(image.env)
            triggers = self._inherited_triggers(image, reference)
        self.args, self.declared = {}, set(self.env)
        self.stages.append(_Stage(f"stage-{len(self.stages)}", name))
        for inner in triggers:  # they run right after FROM, in this stage
            try:
                self._trigger(inner, runs_here=True)
            except Refused as refused:
                raise Refused(f"{reference} has an ONBUILD trigger that is refused: {refused}") from None
        return f"FROM {base} AS {self.stages[-1].ours}"

    @staticmethod
    def _inherited_triggers(image: Image, reference: str) -> list[Instruction]:
        """An image's ONBUILD triggers, each read as Docker reads it (a line break in one makes two)."""
        try:
            return [inner for trigger in image.onbuild for inner in syntax.parse(trigger)]
        except Refused as refused:
            raise Refused(f"{reference} has an ONBUILD trigger that is refused: {refused}") from None

    def _image(self, reference: str, what: str) -> Image:
        image = self.images.resolve(reference, what)
        self.used.append(f"{reference} ({image.id})")
        return image

    def _copy_source(self, reference: str, in_trigger: bool = False) -> str:
        """COPY --from: an earlier stage's canonical name, or the ID of an image this app may use. A
        trigger's text is not rewritten: there a name is a stage only in the canonical spelling."""
        if not reference or "$" in reference:
            raise Refused(f"COPY --from={reference}: write the stage or image name out, without variables")
        if in_trigger:
            return reference if OUR_STAGE.fullmatch(reference) else self._image(reference, "COPY --from").id
        earlier = self.stages[:-1]
        if reference.isascii() and reference.isdigit():
            if int(reference) >= len(earlier):
                raise Refused(f"COPY --from={reference}: there is no stage {reference} before this one")
            return earlier[int(reference)].ours
        stage = _stage_named(earlier, reference)
        return stage.ours if stage else self._image(reference, "COPY --from").id

    def _trigger(self, inner: Instruction, runs_here: bool) -> str:
        """An ONBUILD trigger: written here (it runs in a later build: checked as far as can be, the
        state of this one untouched), or inherited from the base image (it runs here, now)."""
        keyword = inner.keyword
        if keyword in NOT_IN_TRIGGERS or keyword not in INSTRUCTIONS:
            raise Refused(f"ONBUILD {keyword} is not allowed")
        if keyword in ("ADD", "COPY", "RUN") and "$" in inner.args:
            # The trigger runs in a later build, with that build's variables: they are unknown here.
            raise Refused(f"ONBUILD {keyword} with variables cannot be checked: write the value out")
        _refuse_odd_characters(inner)
        if keyword == "COPY":
            return self._copy(inner, in_trigger=True)
        if keyword in ("ADD", "RUN") or (runs_here and keyword in ("ARG", "ENV")):
            return {"ADD": self._add, "RUN": self._run, "ARG": self._arg, "ENV": self._env}[keyword](inner)
        return inner.render()

    # -- ARG, ENV, ADD, COPY, RUN -------------------------------------------------------------

    def _variables(self) -> dict[str, str]:
        return {**self.args, **self.env} if self.stages else dict(self.meta_args)  # ENV wins over ARG, as in Docker

    def _arg(self, instruction: Instruction) -> str:
        before = self._variables()  # Docker expands every default with the values from before the ARG
        declared = syntax.words(instruction.args)
        if not declared:
            raise Refused("ARG names no variable")
        for word in declared:
            key, equals, default = word.partition("=")
            _refuse_name(key, "ARG")
            value = expand(default, before).value if equals else None
            if not self.stages:
                given = self.build_args.get(key, value)
                if given is not None:
                    self.meta_args[key] = given
                continue
            self.declared.add(key)
            given = self.build_args.get(key, value if equals else self.meta_args.get(key))
            if given is not None:
                self.args[key] = given
        return instruction.render()

    def _env(self, instruction: Instruction) -> str:
        before = self._variables()  # ENV a=x b=$a: b gets a's value from before the ENV, as in Docker
        for key, raw in _key_values(instruction.args):
            _refuse_name(key, "ENV")
            self.env[key] = expand(raw, before).value
            self.declared.add(key)
        return instruction.render()

    def _add(self, instruction: Instruction) -> str:
        variables = self._variables()
        options, rest = syntax.flags(instruction.args, "ADD")
        for word in options + _source_words(rest, "ADD"):
            expansion = expand(word, variables)
            if _remote(expansion.value):
                raise Refused(f"ADD {expansion.value} fetches from a URL, on the build host's own network: "
                              f"{DOWNLOAD_HINT}")
            undeclared = sorted(expansion.names - self.declared)
            if undeclared:
                raise Refused(f"ADD {word}: ${undeclared[0]} is no ARG or ENV of this stage (Docker's predefined "
                              f"proxy variables are not available to ADD here): declare it with ARG {undeclared[0]} "
                              "before the ADD, or write the value out")
        return instruction.render()

    def _copy(self, instruction: Instruction, in_trigger: bool = False) -> str:
        options, rest = syntax.flags(instruction.args, "COPY")
        options = [f"--from={self._copy_source(option[len('--from='):], in_trigger)}"
                   if option.startswith("--from=") else option for option in options]
        if "--from" in options:
            raise Refused("COPY --from needs a stage or an image: --from=name")
        variables = self._variables()
        for word in _source_words(rest, "COPY"):
            expand(word, variables)  # refuses what Docker versions could expand otherwise
        return instruction.render(" ".join([*options, rest]))

    def _run(self, instruction: Instruction) -> str:
        options, _ = syntax.flags(instruction.args, "RUN")
        if any(option.startswith("--mount=") and "from" in option.lower() for option in options):
            raise Refused("RUN --mount with from= is not supported (Docker's classic builder, which builds apps "
                          "here, has no RUN --mount): COPY --from=<stage> the files into the stage instead")
        return instruction.render()


def _stage_named(stages: list[_Stage], reference: str) -> _Stage | None:
    return next((stage for stage in stages if stage.name and stage.name == reference.lower()), None)


def _refuse_odd_characters(instruction: Instruction) -> None:
    for ch in instruction.args:
        if instruction.keyword in ASCII_ONLY and not (ch == "\t" or " " <= ch <= "~"):
            raise Refused(f"{instruction.keyword}: the character U+{ord(ch):04X} is not accepted in "
                          f"{instruction.keyword} (printable ASCII only): rename the file, or copy the directory "
                          "that holds it")
        if instruction.keyword in NO_ODD_SPACES and ch not in " \t" and (
                ch.isspace() or unicodedata.category(ch) in ("Cc", "Zs")):
            raise Refused(f"{instruction.keyword}: the character U+{ord(ch):04X} is not accepted in "
                          f"{instruction.keyword} (Docker splits words at it): use spaces, or quote the value")


def _refuse_name(key: str, keyword: str) -> None:
    if not NAME.fullmatch(key):
        raise Refused(f"{keyword} {key[:60]!r}: a variable name is ASCII letters, digits and _, not starting "
                      "with a digit, written without quotes or $")


def _key_values(args: str) -> list[tuple[str, str]]:
    """ENV's pairs, values still unexpanded (ENV a=b c=d, or the old ENV a some words)."""
    found = syntax.words(args)
    if not found:
        raise Refused("ENV sets no variable")
    if "=" not in found[0]:
        key, *value = re.split(r"[ \t]+", args, maxsplit=1)
        if not value:
            raise Refused(f"ENV {key[:60]} needs a value")
        return [(key, value[0])]
    if any("=" not in word for word in found):
        raise Refused("ENV: write every variable as NAME=value")
    return [(key, value) for key, _, value in (word.partition("=") for word in found)]


def _source_words(rest: str, keyword: str) -> list[str]:
    """ADD's and COPY's words: the JSON form's strings, else the words between spaces (as Docker splits)."""
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            return rest.split()  # not JSON for Docker either: words
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise Refused(f"{keyword} [...]: the JSON form is a list of strings")
        return words
    return rest.split()


def _remote(word: str) -> bool:
    lowered = word.lower()
    return "://" in lowered or lowered.startswith(("git@", "github.com/"))

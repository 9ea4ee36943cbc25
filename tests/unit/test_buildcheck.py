"""The Dockerfile check on its own (dockerfile/check.py): Docker's expansion rules, stages,
ownership by label, the panel's images, ONBUILD triggers, registries on private addresses, the
parser differentials it refuses and the canonical Dockerfile it renders.
The attacks themselves go through the worker in tests/stack/test_build_isolation.py."""
import re
from pathlib import Path

import pytest

from deployments.dockerfile.check import Checked, Image, Owner, Refused, check
from deployments.dockerfile.base_images import registry_of
from deployments.dockerfile.syntax import parse

OWNER = Owner(app="mine", app_id=7, instance="main")


def _labels(app: str, app_id: int = 7, instance: str = "main") -> dict[str, str]:
    return {"switchyard.app": app, "switchyard.app-id": str(app_id), "switchyard.instance": instance}


IMAGES = {
    "switchyard/other:1": Image("sha256:b", ("switchyard/other:1",), _labels("other")),
    "sha256:b": Image("sha256:b", ("switchyard/other:1",), _labels("other")),
    "switchyard/mine:1": Image("sha256:a", ("switchyard/mine:1",), _labels("mine"), env={"U": "http://x/"}),
    "switchyard/mine:old": Image("sha256:c", ("switchyard/mine:old",), _labels("mine", app_id=3)),
    "elsewhere/mine:1": Image("sha256:g", ("elsewhere/mine:1",), _labels("mine", instance="other")),
    "debian:bookworm": Image("sha256:d", ("debian:bookworm",)),
    "switchyard-base:bookworm": Image("sha256:e", ("switchyard-base:bookworm",)),
    "sha256:layer": Image("sha256:layer"),
    "triggered:1": Image("sha256:f", ("triggered:1",), onbuild=("ADD http://127.0.0.1/x /x",)),
}
# A pulled image two apps hold (dockerd/pins.py), and one only held, its registry tag moved on.
HOLD = "switchyard.pins/app-3:sha256-" + "a" * 64
IMAGES["pulled:1"] = Image("sha256:p", ("pulled:1", HOLD, "switchyard-other.pins/app-9:sha256-" + "a" * 64))
IMAGES[HOLD] = IMAGES["docker.io/" + HOLD] = IMAGES["pulled:1"]
IMAGES["switchyard.pins/app-3:sha256-" + "b" * 64] = Image("sha256:q", ("switchyard.pins/app-3:sha256-" + "b" * 64,))
# A layer set aside while a build ran (dockerd/image_removal.py): another app's build cache.
SET_ASIDE = "switchyard.set-aside:sha256-" + "d" * 64
IMAGES[SET_ASIDE] = Image("sha256:s", (SET_ASIDE,))
# An image pulled by digest: no tag, only its registry digest.
BY_DIGEST = "postgres@sha256:" + "c" * 64
IMAGES[BY_DIGEST] = Image("sha256:r", repo_digests=(BY_DIGEST,))


# What a registry would give a pull: nothing of these is here before the pull.
REGISTRY = {
    "alpine": Image("sha256:h", ("alpine:latest",)),
    "fetcher:onbuild": Image("sha256:i", ("fetcher:onbuild",), onbuild=("ADD http://127.0.0.1/x /x",)),
}
UNUSABLE = "no image this app may use has that name or ID"


def _check(text: str, build_args: dict[str, str] | None = None) -> Checked:
    images = dict(IMAGES)

    def pull(reference: str) -> bool:
        if reference in REGISTRY:
            images[reference] = REGISTRY[reference]
        return reference in REGISTRY

    return check(text, owner=OWNER, build_args=build_args or {}, inspect=images.get, pull=pull,
                 resolve_host=lambda host: ["127.0.0.1"] if host in ("registry.internal", "127.0.0.1") else ["93.184.216.34"])


@pytest.mark.parametrize("dockerfile, reason", [
    ("FROM scratch\nADD http://127.0.0.1:1/secret /s\n", "RUN step"),
    ("FROM scratch\nARG U=http://127.0.0.1:1/s\nADD $U /s\n", "ADD http://127.0.0.1:1/s"),
    ("ARG U=http://h/s\nFROM scratch\nARG U\nADD ${U} /s\n", "ADD http://h/s"),
    ("FROM scratch\nADD http://[::ffff:127.0.0.1]:1/ /s\n", "RUN step"),
    ("FROM scratch\nADD ${X:-http:}//127.0.0.1/x /s\n", "ADD http://127.0.0.1/x"),  # Docker's :- modifier
    ("FROM scratch\nENV A=ht B=tp\nADD $A$B://h/ /s\n", "ADD http://h/"),
    ("FROM scratch\nADD [\"HTTPS://h/x\", \"/s\"]\n", "RUN step"),
    ("FROM scratch\nADD a \\\n  http://h/x /s\n", "RUN step"),
    ("# escape=`\nFROM scratch\nADD a `\n  http://h/x /s\n", "escape=` directive is not supported"),
    ("FROM scratch\nADD git@github.com:a/b.git /s\n", "RUN step"),
    ("FROM switchyard/mine:1\nADD $U /x\n", "ADD http://x/"),  # ENV of the base image
    ("FROM scratch\nONBUILD ADD http://h/x /y\n", "RUN step"),
    ("\ufeffFROM scratch\nADD http://h/x /s\n", "RUN step"),
    ("FROM scratch\nADDD http://h/x /s\n", "unknown instruction"),
    ("FROM switchyard/other:1\n", UNUSABLE),
    ("FROM sha256:b\n", UNUSABLE),
    ("ARG B=switchyard/other:1\nFROM $B\n", UNUSABLE),
    ("FROM scratch\nCOPY --from=switchyard/other:1 / /\n", UNUSABLE),
    ("FROM scratch\nRUN --mount=type=bind,from=switchyard/other:1,target=/o cat /o/x\n", "RUN --mount with from="),
    ("FROM switchyard/mine:old\n", UNUSABLE),  # a deleted app's of the same name
    ("FROM elsewhere/mine:1\n", UNUSABLE),  # another installation's
    ("FROM switchyard-base:bookworm\n", UNUSABLE),
    ("FROM switchyard:local\n", UNUSABLE),
    ("FROM sha256:layer\n", UNUSABLE),
    ("FROM triggered:1\n", "ONBUILD trigger"),
    ("FROM registry.internal:5000/x\n", "private address"),
    ("FROM 127.0.0.1:5000/x\n", "private address"),
])
def test_refused(dockerfile, reason):
    _assert_refused(dockerfile, reason)


def _assert_refused(dockerfile: str, reason: str) -> None:
    with pytest.raises(Refused, match=re.escape(reason)):
        _check(dockerfile)


@pytest.mark.parametrize("dockerfile", [
    "FROM scratch\nADD --chown=1 local.tar /s\n",
    "FROM scratch\nARG U\nADD $U /s\n",
    "FROM switchyard/mine:1 AS build\nFROM scratch\nCOPY --from=build / /\nCOPY --from=0 / /\n",
    "FROM debian:bookworm\nRUN wget -O /x http://example.com/x\n",
    "FROM alpine\n",  # not here: pulled before the check goes on
])
def test_allowed(dockerfile):
    _check(dockerfile)


def test_a_build_arg_is_expanded_like_docker_does():
    with pytest.raises(Refused, match="ADD http://1.2.3.4/"):
        _check("FROM scratch\nARG U\nADD $U /s\n", {"U": "http://1.2.3.4/"})


def test_quoted_arg_values_are_read_whole():
    with pytest.raises(Refused, match="ADD http://h/x"):
        _check('FROM scratch\nARG U="http://h/x" V="a b"\nADD $U /s\n')
    _check('FROM scratch\nARG U="a b" V=c\nADD $V /s\n')


def test_an_onbuild_trigger_split_by_a_tab_is_still_checked():
    with pytest.raises(Refused, match="RUN step"):
        _check("FROM scratch\nONBUILD ADD\thttp://h/x /y\n")


# Each of these passed the check before the Dockerfile was re-rendered (dockerfile-parse and a
# looser expansion): what Docker read there was not what the check had read.
SECRET = "http://127.0.0.1:1/s"


@pytest.mark.parametrize("dockerfile, reason", [
    # dockerd 20.10 reads no escape directive after an empty `# syntax=`: the LABEL ends, the ADD runs.
    (f"# syntax=\n# escape=`\nFROM scratch\nLABEL a=`\nADD {SECRET} /s\n", "line 1: the `# syntax=` directive"),
    (f"# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nLABEL a=`\nADD {SECRET} /s\n", "line 2: the `# escape=`"),
    (f"# syntax=example.com/frontend:1\nFROM scratch\nADD {SECRET} /s\n", "line 1: the `# syntax=` directive"),
    (f"# a comment\n# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nLABEL a=`\nADD {SECRET} /s\n",
     "line 2: the `# syntax=` directive"),
    (f"# check=skip=all\n# escape=`\nFROM scratch\nLABEL a=\\\nADD {SECRET} /s\n", "line 2: the `# escape=`"),
    (f"# ESCAPE=`\nFROM scratch\nLABEL a=`\nADD {SECRET} /s\n", "`# escape=` directive is not supported"),
    # a continuation followed by a space character Go's regexp does not take for one
    (f"FROM scratch\nLABEL a=\\\f\nADD {SECRET} /s\n", "U+000C"),
    (f"FROM scratch\nLABEL a=\\\u00a0\nADD {SECRET} /s\n", "backslash followed by U+00A0"),
    # a comment for Python (U+001C is a space there), an instruction line for Go
    (f"FROM scratch\nLABEL a=\\\n\x1c# \\\nADD {SECRET} /s\n", "U+001C"),
    # an escaped backslash at the end: a continuation for older Docker parsers, not for newer ones
    (f"FROM scratch\nLABEL a=\\\\\nADD {SECRET} /s\n", "escaped backslash"),
    # special parameters: Docker expands them to nothing
    ("FROM scratch\nADD http:$-//127.0.0.1:1/s /s\n", "$-"),
    ("FROM scratch\nADD http:$@//127.0.0.1:1/s /s\n", "$@"),
    ("FROM scratch\nADD http:$$//127.0.0.1:1/s /s\n", "$$"),
    ("FROM a21c$16dad9185\n", "$1"),
    ("FROM a21c$-6dad9185\n", "$-"),
    # Go ends the name at ², Python's isalnum did not
    ("FROM scratch\nENV a=/ b=x$a\u00b2\n", "read as part of the name"),
    ("FROM scratch\nADD $a\u00b2 /s\n", "printable ASCII only"),
    # ENV b=$a takes a's value from before the instruction, not the one set beside it
    ("FROM scratch\nENV A=http:\nENV A=x B=${A}//127.0.0.1:1/s\nADD $B /s\n", "ADD http://127.0.0.1:1/s fetches"),
    # a predefined proxy variable, usable in ADD without an ARG line
    ("FROM scratch\nADD $ALL_PROXY /s\n", "$ALL_PROXY is no ARG or ENV of this stage"),
    ("FROM scratch\nADD ${no_proxy:-x} /s\n", "$no_proxy is no ARG or ENV"),
    # Docker refuses these too; here they gave an internal error or "would be pulled"
    ("FROM $UNSET\n", "FROM $UNSET expands to nothing"),
    ("FROM scratch\nCOPY --from=$X / /\n", "without variables"),
])
def test_what_docker_could_read_otherwise_is_refused(dockerfile, reason):
    _assert_refused(dockerfile, reason)


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                                  "NO_PROXY", "ALL_PROXY", "all_proxy"])
def test_proxy_build_args_are_refused(name):
    with pytest.raises(Refused, match=f"the build arg {name} is one of Docker's predefined proxy variables"):
        _check("FROM scratch\nCOPY . /\n", {name: SECRET})


def test_dockers_own_frontend_named_on_the_first_line_is_dropped_not_refused():
    """`# syntax=docker/dockerfile:1` opens many real Dockerfiles; the canonical copy has no directives."""
    checked = _check("# syntax=docker/dockerfile:1.4\n# escape=\\\nFROM scratch\nCOPY a /a\n")
    assert "syntax" not in checked.dockerfile and "escape" not in checked.dockerfile


def test_the_canonical_dockerfile_has_no_directives_comments_or_continuations():
    checked = _check("# escape=\\\n# a comment\nFROM switchyard/mine:1 AS Build\n  # indented comment\n"
                     "RUN echo a \\\n  # inside\n    b \\\n\n  c\nENV A=1 \\\n  B=2\nFROM scratch\n")
    assert checked.dockerfile == ("FROM sha256:a AS stage-0\nRUN echo a     b   c\nENV A=1   B=2\n"
                                  "FROM scratch AS stage-1\n")
    assert checked.images == ("switchyard/mine:1 (sha256:a)",)


def test_stages_are_renamed_and_images_pinned_by_id():
    """A stage named like an image's short ID stays a stage: references to it are rewritten to
    the stage's own name, and every other --from or FROM is an image, named by its ID."""
    checked = _check("FROM scratch AS a21c6dad9185\nCOPY x /x\nFROM debian:bookworm AS second\n"
                     "COPY --from=a21c6dad9185 /x /x\nCOPY --from=0 /x /y\nCOPY --chown=1 --from=switchyard/mine:1 / /\n"
                     "FROM A21C6DAD9185\nFROM second\n")
    assert checked.dockerfile == (
        "FROM scratch AS stage-0\nCOPY x /x\nFROM sha256:d AS stage-1\nCOPY --from=stage-0 /x /x\n"
        "COPY --from=stage-0 /x /y\nCOPY --chown=1 --from=sha256:a / /\nFROM stage-0 AS stage-2\nFROM stage-1 AS stage-3\n")
    assert checked.target("Second") == "stage-1"
    with pytest.raises(Refused, match="no stage of the Dockerfile"):
        checked.target("third")


def test_one_message_whether_the_image_is_another_apps_or_none_at_all():
    """The message must not tell a tenant which image IDs exist on the host."""
    messages = []
    for reference in ("sha256:b", "sha256:nothing", "switchyard/other:1", "switchyard/none:1", "gone:1"):
        with pytest.raises(Refused) as refused:
            _check(f"FROM {reference}\n")
        messages.append(str(refused.value).replace(reference, "X"))
    assert len(set(messages)) == 1, messages


def test_a_base_image_that_is_not_here_is_pulled_and_its_onbuild_triggers_checked():
    with pytest.raises(Refused, match="fetcher:onbuild has an ONBUILD trigger that is refused: .*RUN step"):
        _check("FROM fetcher:onbuild\n")
    assert _check("FROM alpine\n").dockerfile == "FROM sha256:h AS stage-0\n"


@pytest.mark.parametrize("trigger, reason", [
    ("COPY --from=switchyard/other:1 / /", UNUSABLE),  # a trigger's --from is an image unless it is stage-N
    ("RUN echo a\nADD http://h/x /x", "RUN step"),  # a trigger with a line break: two instructions for Docker
    ("ADD $HTTP_PROXY /x", "with variables cannot be checked"),
])
def test_inherited_onbuild_triggers_are_read_as_docker_reads_them(trigger, reason):
    IMAGES["triggered:2"] = Image("sha256:j", ("triggered:2",), onbuild=(trigger,))
    try:
        with pytest.raises(Refused, match=reason):
            _check("FROM scratch AS switchyard\nFROM triggered:2\n")
    finally:
        del IMAGES["triggered:2"]


def test_a_stages_onbuild_triggers_run_in_a_stage_from_it():
    with pytest.raises(Refused, match="ADD http://h/x fetches"):
        _check("FROM scratch AS a\nENV U=safe\nONBUILD ENV U=http://h/x\nFROM a\nADD $U /s\n")


@pytest.mark.parametrize("dockerfile", [
    "FROM scratch\nARG A=1\nENV B=${A:+set} C=${A-unset} D=${Z+x}\nADD ${B}${C}${D} /s\n",
    'FROM scratch\nENV A="$ not a variable" B=\'$-\' C=\\$1\nRUN echo $- $@ $$ "$1" \u00e9\u00b2\n',
    "FROM scratch\nLABEL description=\"d\u00e9j\u00e0 vu\" a=$-\nCMD echo \"\u00a0\x07\"\n",
    "FROM scratch\nCOPY [\"a b\", \"/c d/\"]\n",
])
def test_what_is_modelled_is_kept(dockerfile):
    _check(dockerfile)


@pytest.mark.parametrize("dockerfile", ["compose/Dockerfile", "compose/postgres.Dockerfile", "compose/redis.Dockerfile"])
def test_the_panels_own_images_carry_the_panel_label(dockerfile):
    """Re-tagged outside the switchyard* names, the panel's images are still not for apps to build on."""
    labels = [i.args for i in parse((Path(__file__).parents[2] / dockerfile).read_text()) if i.keyword == "LABEL"]
    assert any(label.startswith("switchyard.panel=") for label in labels), labels
    retagged = Image("sha256:k", ("registry.example/panel:1",), {"switchyard.panel": "switchyard"})
    with pytest.raises(Refused, match=UNUSABLE):
        check("FROM registry.example/panel:1\n", owner=OWNER, build_args={}, inspect={"registry.example/panel:1": retagged}.get,
              resolve_host=lambda host: ["93.184.216.34"])


def test_an_image_from_a_registry_the_administrator_did_not_list_is_refused_before_docker_is_asked():
    asked = []

    def inspect(reference: str):
        asked.append(reference)
        return IMAGES.get(reference)

    listed = ("docker.io", "ghcr.io")
    for reference in ("registry.example.org/base:1", "evil.example:5000/x", "localhost/x", "127.0.0.1:5000/x"):
        with pytest.raises(Refused, match="SWITCHYARD_PULL_REGISTRIES"):
            check(f"FROM {reference}\n", owner=OWNER, build_args={}, inspect=inspect, registries=listed)
    assert asked == []
    checked = check("FROM debian:bookworm\nFROM docker.io/library/debian:bookworm\n", owner=OWNER, build_args={},
                    inspect=lambda reference: IMAGES["debian:bookworm"], registries=listed)
    assert checked.images


def test_the_registry_an_image_comes_from_is_read_as_docker_reads_it():
    assert registry_of("debian") == registry_of("library/debian:12") == registry_of("index.docker.io/x") == "docker.io"
    assert registry_of("ghcr.io/o/x:1") == "ghcr.io" and registry_of("Localhost/x") == "localhost"
    assert registry_of("host:5000/x") == "host:5000"


def test_a_registry_at_a_private_address_the_administrator_trusts_may_be_named():
    """SWITCHYARD_PRIVATE_REGISTRIES: the same list for a FROM as for a Compose image service."""
    image = IMAGES["debian:bookworm"]
    tagged = Image(id=image.id, tags=("registry.internal:5000/x:latest",), labels={}, env={}, onbuild=())

    def private(host: str) -> list[str]:
        return ["10.1.2.3"]
    with pytest.raises(Refused, match="private address"):
        check("FROM registry.internal:5000/x\n", owner=OWNER, build_args={}, inspect=lambda reference: tagged,
              resolve_host=private, trusted_private=("other.internal:5000",))
    checked = check("FROM registry.internal:5000/x\n", owner=OWNER, build_args={}, inspect=lambda reference: tagged,
                    resolve_host=private, trusted_private=("registry.internal:5000",))
    assert checked.images


def test_an_apps_hold_tag_on_a_pulled_image_is_neither_its_name_nor_a_reason_to_refuse_it():
    """dockerd/pins.py tags a pulled image for each app that keeps it; the image is judged by its
    registry tags as before, and a hold tag, however written, names nothing a build may use."""
    assert _check("FROM pulled:1\n").images == ("pulled:1 (sha256:p)",)
    for name in (HOLD, "docker.io/" + HOLD, "switchyard.pins/app-3:sha256-" + "b" * 64):
        _assert_refused(f"FROM {name}\n", UNUSABLE)


def test_a_layer_set_aside_while_a_build_ran_is_no_name_to_build_from():
    """Its tag is the only name another app's intermediate layer (its source, COPYed in) has."""
    _assert_refused(f"FROM {SET_ASIDE}\n", UNUSABLE)
    _assert_refused(f"FROM scratch\nCOPY --from={SET_ASIDE} / /\n", UNUSABLE)


def test_an_image_pulled_by_digest_is_usable_by_that_name_though_it_has_no_tag():
    """`image: postgres@sha256:...` or `FROM postgres@sha256:...`: Docker keeps no tag for it, only
    the digest; an untagged layer with no registry name stays refused."""
    assert _check(f"FROM {BY_DIGEST}\n").images == (f"{BY_DIGEST} (sha256:r)",)
    _assert_refused("FROM sha256:layer\n", UNUSABLE)

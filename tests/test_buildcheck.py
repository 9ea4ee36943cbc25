"""The Dockerfile check on its own (engine/buildcheck.py): Docker's expansion rules, stages,
ownership by label, the panel's images, ONBUILD triggers, registries on private addresses.
The attacks themselves go through the worker in tests/test_build_isolation.py."""
import pytest

from deployments.engine.buildcheck import Image, Owner, Refused, check

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


def _check(text: str, build_args: dict[str, str] | None = None) -> list[str]:
    return check(text, owner=OWNER, build_args=build_args or {}, inspect=IMAGES.get,
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
    ("# escape=`\nFROM scratch\nADD a `\n  http://h/x /s\n", "RUN step"),
    ("FROM scratch\nADD git@github.com:a/b.git /s\n", "RUN step"),
    ("FROM switchyard/mine:1\nADD $U /x\n", "ADD http://x/"),  # ENV of the base image
    ("FROM scratch\nONBUILD ADD http://h/x /y\n", "RUN step"),
    ("\ufeffFROM scratch\nADD http://h/x /s\n", "RUN step"),
    ("FROM scratch\nADDD http://h/x /s\n", "unknown instruction"),
    ("FROM switchyard/other:1\n", "belongs to another app"),
    ("FROM sha256:b\n", "belongs to another app"),
    ("ARG B=switchyard/other:1\nFROM $B\n", "belongs to another app"),
    ("FROM scratch\nCOPY --from=switchyard/other:1 / /\n", "belongs to another app"),
    ("FROM scratch\nRUN --mount=type=bind,from=switchyard/other:1,target=/o cat /o/x\n", "belongs to another app"),
    ("FROM switchyard/mine:old\n", "belongs to another app"),  # a deleted app's of the same name
    ("FROM elsewhere/mine:1\n", "belongs to another app"),  # another installation's
    ("FROM switchyard-base:bookworm\n", "the panel's own"),
    ("FROM switchyard:local\n", "belong to the panel"),
    ("FROM sha256:layer\n", "no tag"),
    ("FROM triggered:1\n", "ONBUILD trigger"),
    ("FROM registry.internal:5000/x\n", "private address"),
    ("FROM 127.0.0.1:5000/x\n", "private address"),
])
def test_refused(dockerfile, reason):
    with pytest.raises(Refused, match=reason.replace("$", r"\$").replace("+", r"\+")):
        _check(dockerfile)


@pytest.mark.parametrize("dockerfile", [
    "FROM scratch\nADD --chown=1 local.tar /s\n",
    "FROM scratch\nARG U\nADD $U /s\n",
    "FROM switchyard/mine:1 AS build\nFROM scratch\nCOPY --from=build / /\nCOPY --from=0 / /\n",
    "FROM debian:bookworm\nRUN wget -O /x http://example.com/x\n",
    "FROM alpine\n",  # not here: a pull from Docker Hub
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

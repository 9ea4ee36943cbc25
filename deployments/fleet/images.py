"""Images across the fleet: built once, pushed to the registry, and pulled by digest on every host
that will run them before anything switches (pre-pull), so a deploy never waits on a pull half-way,
and a host that cannot pull fails the deploy before it touches traffic. A digest names exactly one
image: every host runs the same bytes, and a rollback pulls exactly what ran before."""
import re

from celery.exceptions import TimeoutError as CeleryTimeout

from deployments.fleet import broker

BY_DIGEST = re.compile(r"^[a-z0-9][a-z0-9.:/_-]*@sha256:[0-9a-f]{64}$")
# What a pull may take on a host before the panel gives up on it (the agent bounds it too).
PULL_TIMEOUT_SECONDS = 600


class PrePullFailed(Exception):
    """Some hosts could not pull; the message names each and says why."""


def pre_pull(hosts: list[str], reference: str, timeout: int = PULL_TIMEOUT_SECONDS) -> dict[str, str]:
    """Every host pulls `reference` at once; returns each host's image id (the same everywhere)."""
    if not BY_DIGEST.match(reference):
        raise ValueError(f"{reference!r} is not an image by digest (REPOSITORY@sha256:…): hosts pull only by digest")
    sent = {host: broker.host_app(host).send_task("fleet.pull", (reference, timeout)) for host in hosts}
    answers, problems = {}, []
    for host, result in sent.items():
        try:
            answer = result.get(timeout=timeout + 30)
        except CeleryTimeout:
            answer = {"image_id": "", "error": f"no answer within {timeout + 30} s (is its agent running?)"}
        if answer["error"]:
            problems.append(f"{host}: {answer['error']}")
        answers[host] = answer["image_id"]
    if problems:
        raise PrePullFailed(f"{reference} could not be pulled on every host: " + "; ".join(problems))
    return answers

"""`restart` and `deploy.restart_policy` read into one Docker restart policy, as a string:
"no", "always", "unless-stopped", "on-failure" or "on-failure:N" (at most N restarts).
containers.enable_restarts hands it to Docker once a container passed its checks.

deploy.restart_policy (Swarm's form) maps as: condition none → no, on-failure → on-failure
(max_attempts → :N), any → always (max_attempts → on-failure:N is not the same thing, so
refused with any); delay and window have no Docker equivalent and are ignored with a notice.
When both are given, deploy.restart_policy wins, as in Compose.
"""
import re
from dataclasses import dataclass, field

POLICIES = ("no", "always", "unless-stopped", "on-failure")
ON_FAILURE = re.compile(r"^on-failure(?::(\d{1,4}))?$")
SWARM_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


@dataclass
class RestartPolicy:
    policy: str = "unless-stopped"
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def read_restart(where: str, definition: dict) -> RestartPolicy:
    read = RestartPolicy()
    restart = definition.get("restart", "unless-stopped")
    if restart in POLICIES or (isinstance(restart, str) and ON_FAILURE.match(restart)):
        read.policy = restart
    else:
        read.problems.append(f"{where}.restart: {restart!r}: one of no, always, unless-stopped, on-failure, "
                             "on-failure:N (N restarts at most)")
    swarm = (definition.get("deploy") or {}).get("restart_policy")
    if swarm is not None:
        _read_swarm_policy(f"{where}.deploy.restart_policy", swarm, read)
    return read


def _read_swarm_policy(where: str, swarm, read: RestartPolicy) -> None:
    if not isinstance(swarm, dict):
        read.problems.append(f"{where}: a mapping (condition, max_attempts)")
        return
    condition = swarm.get("condition", "any")
    if condition not in SWARM_CONDITIONS:
        read.problems.append(f"{where}.condition: {condition!r}: one of none, on-failure, any")
        return
    for key in ("delay", "window"):
        if key in swarm:
            read.notices.append(f"{where}.{key}: ignored: Docker restarts with its own growing delay")
    attempts = swarm.get("max_attempts")
    policy = SWARM_CONDITIONS[condition]
    if attempts is not None:
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 0 <= attempts <= 9999:
            read.problems.append(f"{where}.max_attempts: a whole number from 0")
            return
        if condition == "any":
            read.problems.append(f"{where}.max_attempts: Docker counts attempts only with condition: on-failure")
            return
        if condition == "on-failure" and attempts:
            policy = f"on-failure:{attempts}"
    read.policy = policy


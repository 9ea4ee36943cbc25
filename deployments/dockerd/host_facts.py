"""What this machine's Docker daemon says about itself, for a host's heartbeat (fleet/agent.py):
its version and its containers. A daemon that does not answer is a fact too, not an error."""
from dataclasses import dataclass

import docker

from deployments.dockerd import daemon
from deployments.dockerd.values import LABEL_INSTANCE


@dataclass(frozen=True)
class DockerFacts:
    version: str = ""
    containers: int = 0  # running or not
    running: int = 0
    switchyard_containers: int = 0  # any installation's (the label switchyard.instance)
    error: str = ""  # why the daemon did not answer


def docker_facts() -> DockerFacts:
    try:
        info = daemon.client().info()
        ours = daemon.client().containers.list(all=True, filters={"label": LABEL_INSTANCE})
    except docker.errors.DockerException as error:
        return DockerFacts(error=str(error)[:300])
    return DockerFacts(version=info.get("ServerVersion", ""), containers=int(info.get("Containers", 0)),
                       running=int(info.get("ContainersRunning", 0)), switchyard_containers=len(ours))

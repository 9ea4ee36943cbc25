"""What a host says about itself with every heartbeat: written by its agent (agent.py), read and
checked by the panel (heartbeats.py), shown by `hosts list` and the Hosts page."""
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class HostFacts:
    """What a host says about itself with every heartbeat (shown by `hosts list`)."""
    docker_version: str
    haproxy_version: str
    containers: int  # on this host's Docker, running or not
    containers_running: int
    switchyard_containers: int  # of those, Switchyard's (a host is removed only with none)
    cpus: int
    load1: float
    memory_total_mb: int
    memory_available_mb: int
    sent_at: float  # the agent's clock, seconds since the epoch
    docker_error: str = ""  # why Docker did not answer (then its figures are 0)


FACT_NAMES = frozenset(field.name for field in fields(HostFacts))

"""The container values the engine passes around: typed, never dicts read by key.

A Container is one the engine started for a deployment (stored with it, in server-slot
order); a ListedContainer is what the Docker daemon lists under this installation's label.
runtime.py creates both (it owns containers' names and labels); this module imports no
Docker, so the models and the web process can use the values without it.
"""
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    ip: str
    port: int

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "ip": self.ip, "port": self.port}

    @classmethod
    def from_dict(cls, stored: dict) -> "Container":
        return cls(id=stored["id"], name=stored["name"], ip=stored["ip"], port=int(stored["port"]))

    def at(self, ip: str) -> "Container":
        """The same container at another address (Docker gave it a new one on a restart)."""
        return replace(self, ip=ip)


@dataclass(frozen=True)
class ListedContainer:
    id: str
    name: str
    app: str  # the app's name, from its label
    deployment: str  # the deployment's id as its label holds it ("" if none)
    state: str  # Docker's: running, exited, created, ...

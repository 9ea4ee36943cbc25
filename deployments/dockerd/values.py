"""The Docker adapter's typed values and labels: what the rest of Switchyard passes around, never
dicts read by key.

A Container is one the engine started for a deployment (stored with it, in server-slot
order); a ListedContainer is what the Docker daemon lists under this installation's label; an
Image is what Docker knows of an image, as far as the build check needs it. containers.py
creates the containers (it owns their names), images.py the images; this module imports no
Docker, so the models, the build check and the web process can use the values without it.
"""
import re
from dataclasses import dataclass, field, replace

from django.conf import settings

LABEL_INSTANCE = "switchyard.instance"
LABEL_APP = "switchyard.app"
LABEL_DEPLOYMENT = "switchyard.deployment"
LABEL_SERVICE = "switchyard.service"
# On a built image: its base images' IDs, hashed (engine/phases/build.py), the one input of a
# build that its history (images.built_from) does not show. Constant while the bases are, so
# the build cache still serves every step.
LABEL_BUILD_BASES = "switchyard.build-bases"
# On a built image: what it was built from (the build context's git tree, the checked Dockerfile,
# its target and build arguments), hashed: a later build of the same source reuses the image.
LABEL_SOURCE = "switchyard.source"
LABEL_APP_ID = "switchyard.app-id"  # on volumes: a new app of a deleted one's name never gets its data


def instance_labels(**extra: str) -> dict[str, str]:
    return {LABEL_INSTANCE: settings.SWITCHYARD["INSTANCE"], **extra}


def instance_label() -> str:
    """The `label` filter that finds this installation's containers, images, networks and volumes."""
    return f"{LABEL_INSTANCE}={settings.SWITCHYARD['INSTANCE']}"


def name_prefix() -> str:
    """What the names of this installation's containers and volumes start with: `sy` for the
    installation named `main` (the default), `sy.INSTANCE` for another, so that two installations
    on one Docker daemon (a test run beside a panel, test processes side by side) never take each
    other's names, and none of them can meet the other's volume by its name."""
    instance = settings.SWITCHYARD["INSTANCE"]
    return "sy" if instance == "main" else f"sy.{instance}"


def image_namespace() -> str:
    """The repository prefix of this installation's app images, apart per installation as names are
    (`switchyard` for `main`): another installation's build never moves this one's tags."""
    instance = settings.SWITCHYARD["INSTANCE"]
    return "switchyard" if instance == "main" else f"switchyard-{instance}"


# A pulled image's hold tag (dockerd/pins.py): one per app that keeps it, of any installation.
HOLD_TAG = re.compile(r"^switchyard(-[^/:@]+)?\.pins/app-\d+:sha256-[0-9a-f]{64}$")


def hold_repository(app_id: int) -> str:
    """Where this installation's app `app_id` holds the images it pulled (by app id: a later app of
    the same name holds nothing of the deleted one's)."""
    return f"{image_namespace()}.pins/app-{app_id}"


def is_hold_tag(tag: str) -> bool:
    return bool(HOLD_TAG.match(tag))


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
class ServiceRelease:
    """One service of a Compose app's release besides the web one (see compose/project.py):
    what it runs and which containers run it. A stateful service left unchanged by a deploy is
    carried over with the same containers, so `started_by` can be an earlier deployment."""
    name: str
    role: str  # "stateful" or "worker"
    image: str
    definition: str  # ServiceSpec.definition(): a change means new containers
    image_id: str
    containers: tuple[Container, ...]
    started_by: int
    stop_timeout: int = 10  # its stop_grace_period, for when a later deploy stops it
    state: str = "running"  # as reconcile last saw its containers (the panel shows it without asking Docker)
    built_from: str = ""  # images.built_from of its image ("" for a pulled image, or one built before it existed)

    def as_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "image": self.image, "definition": self.definition,
                "image_id": self.image_id, "containers": [c.as_dict() for c in self.containers],
                "started_by": self.started_by, "stop_timeout": self.stop_timeout, "state": self.state,
                "built_from": self.built_from}

    @classmethod
    def from_dict(cls, stored: dict) -> "ServiceRelease":
        return cls(name=stored["name"], role=stored["role"], image=stored["image"], definition=stored["definition"],
                   image_id=stored["image_id"], containers=tuple(Container.from_dict(c) for c in stored["containers"]),
                   started_by=int(stored["started_by"]), stop_timeout=int(stored.get("stop_timeout", 10)),
                   state=stored.get("state", "running"), built_from=stored.get("built_from", ""))


@dataclass(frozen=True)
class ListedContainer:
    id: str
    name: str
    app: str  # the app's name, from its label
    deployment: str  # the deployment's id as its label holds it ("" if none)
    state: str  # Docker's: running, exited, created, ...
    ip: str = ""  # its address on its app's network ("" if it has none)


@dataclass(frozen=True)
class Image:
    """What Docker knows of an image, as far as the build check needs it (images.image_facts)."""
    id: str
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    onbuild: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()  # `repository@sha256:...`: what a pull by digest leaves, with no tag

"""Which images a tenant's build may start from or copy out of (FROM, COPY --from).

Every image named is resolved as Docker resolves it (tag, ID, short ID, digest); one Docker does
not have is pulled first by the worker, so that its ONBUILD triggers can be checked and the
canonical Dockerfile can name it by ID (the daemon then resolves nothing by name at build time).
An image is usable when it is this app's own, or carries no Switchyard label and a tag outside
the panel's `switchyard*` names (an app's hold tag on a pulled image, dockerd/pins.py, is no name
of it to use: it neither counts as its tag nor refuses it). Anything else — another app's, the panel's, an intermediate
layer, or a name nothing answers to even after a pull — is refused with one and the same message:
different messages would tell a tenant which image IDs exist on the host. An image named from a
registry the administrator did not list (SWITCHYARD_PULL_REGISTRIES; a name without a registry is
Docker Hub's, docker.io) is refused before Docker is asked anything: dockerd pulls on the host's
network and follows a registry's redirects wherever they point. A registry on a
loopback or private address is refused before any pull (the daemon would talk to the host's own
network; Docker even speaks plain HTTP to a 127.0.0.0/8 registry).
"""
import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable

from deployments.dockerd.values import LABEL_APP, LABEL_APP_ID, LABEL_INSTANCE, Image, is_hold_tag
from deployments.dockerfile.syntax import Refused

LABEL_PANEL = "switchyard.panel"  # on the panel's own images (compose/*.Dockerfile)
PANEL_REPOSITORY_PREFIX = "switchyard"  # switchyard:local, switchyard-base:bookworm, switchyard/<app> ...
NOT_USABLE = ("no image this app may use has that name or ID (an app may build from its own images, public "
              "images and stages of its own Dockerfile)")


@dataclass(frozen=True)
class Owner:
    """Whose build this is: its images are the only Switchyard images it may start from."""
    app: str
    app_id: int
    instance: str


Inspect = Callable[[str], Image | None]  # a reference, as Docker resolves it; None if Docker has no such image
Pull = Callable[[str], bool]  # pull a reference from its registry; False if that failed


class ImageResolver:
    def __init__(self, owner: Owner, inspect: Inspect, pull: Pull | None,
                 resolve_host: Callable[[str], list[str]] | None = None,
                 registries: tuple[str, ...] | None = None, trusted_private: tuple[str, ...] = ()) -> None:
        """`registries`: the only registries an image may be named from (None: any public one);
        `trusted_private`: registries at private addresses the administrator vouches for."""
        self.owner, self.inspect, self.pull = owner, inspect, pull or (lambda reference: False)
        self.resolve_host = resolve_host or _addresses
        self.registries = registries
        self.trusted_private = trusted_private

    def resolve(self, reference: str, what: str) -> Image:
        """The image `reference` names, pulled first if Docker lacks it; Refused unless this app may use it."""
        if not reference or reference.startswith("-") or not reference.isascii() or any(
                ch.isspace() or not ch.isprintable() for ch in reference):
            raise Refused(f"{what} {reference!r} is not an image reference")
        self.check_registry(reference, what)
        if is_hold_tag(_without_docker_hub(reference)):  # an app's hold on a pulled image is no name to use
            raise Refused(f"{what} {reference}: {NOT_USABLE}")
        image = self.inspect(reference)
        if image is None and not _panel_name(reference) and self.pull(reference):  # no pulls of the panel's names
            image = self.inspect(reference)
        if image is None or not self._usable(image):
            raise Refused(f"{what} {reference}: {NOT_USABLE}")
        return image

    def check_registry(self, reference: str, what: str) -> None:
        """Refused unless the registry `reference` names is listed and not at a private address
        (the administrator's trusted ones aside); asks Docker nothing."""
        self._refuse_unlisted_registry(reference, what)
        self._refuse_private_registry(reference, what)

    def _usable(self, image: Image) -> bool:
        labels = image.labels
        if LABEL_APP in labels:
            return (labels[LABEL_APP] == self.owner.app and labels.get(LABEL_INSTANCE) == self.owner.instance
                    and labels.get(LABEL_APP_ID) in (None, str(self.owner.app_id)))
        if LABEL_INSTANCE in labels or LABEL_PANEL in labels:
            return False
        # Its registry names: tags, and `repository@sha256:...` (an image pulled by digest has no
        # tag); an app's hold on a pulled image (dockerd/pins.py) is none.
        names = [name for name in (*image.tags, *image.repo_digests) if not is_hold_tag(name)]
        return bool(names) and not any(_panel_name(name) for name in names)

    def _refuse_unlisted_registry(self, reference: str, what: str) -> None:
        """Checked before Docker is asked anything, so the answer never depends on what is local."""
        registry = registry_of(reference)
        if self.registries is not None and registry not in self.registries:
            raise Refused(f"{what} {reference}: images come only from {', '.join(self.registries)} "
                          f"(SWITCHYARD_PULL_REGISTRIES, set by the administrator), not from {registry}")

    def _refuse_private_registry(self, reference: str, what: str) -> None:
        first = registry_of(reference)
        if first == "docker.io" or first in self.trusted_private:
            return
        host = first.rsplit(":", 1)[0] if not first.startswith("[") else first[1:first.find("]")]
        addresses = ["127.0.0.1"] if host.lower() == "localhost" else self.resolve_host(host)
        private = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global]
        if private:
            raise Refused(f"{what} {reference}: the registry {host} is at a private address ({private[0]}); "
                          "the build host's own network is not for tenants")


def registry_of(reference: str) -> str:
    """The registry host Docker pulls `reference` from: its first component when that names a host
    (a dot, a port or `localhost`), else Docker Hub (`docker.io`)."""
    first, slash, _ = reference.partition("/")
    if not slash or not ("." in first or ":" in first or first.lower() == "localhost"):
        return "docker.io"
    host = first.lower()
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def _without_docker_hub(reference: str) -> str:
    """The name as Docker lists it: Docker Hub's registry names dropped."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if reference.lower().startswith(prefix):
            return reference[len(prefix):]
    return reference


def _panel_name(reference: str) -> bool:
    return _repository(reference).startswith(PANEL_REPOSITORY_PREFIX)


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

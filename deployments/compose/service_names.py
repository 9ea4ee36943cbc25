"""Service names as Compose allows them (letters of either case, digits, '.', '_', '-') made safe
where they reach Docker: image repository names must be lower-case, and a container name is
the service's in sy-APP_DEPLOYMENT-SERVICE-N. A name already lower-case without dots is used as
it is (existing apps keep their names); any other is lower-cased, its dots made '-', and a short
hash of the name as written added, so that `Web`, `web` and `W.eb` never share an image or a
container name. Other services still find a service by its name as written (its network alias)."""
import hashlib
import re

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,30}$")  # Compose's grammar, at most 31
_DOCKER_SAFE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def docker_name(service: str) -> str:
    """The service's name in image repositories and container names (see the module's docstring)."""
    if _DOCKER_SAFE.match(service):
        return service
    digest = hashlib.sha256(service.encode()).hexdigest()[:6]
    return f"{service.lower().replace('.', '-')}-{digest}"

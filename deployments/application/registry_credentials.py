"""An app's private registry credentials, for its Compose image services: a registry host, a
username and a password or token (stored encrypted, never shown back). They go with pulls from
that very host only (engine/phases/pull.py); changing the host drops the stored password, so
that a password is never sent to a host it was not given for."""
from django.core.exceptions import ValidationError
from django.db import transaction

from deployments.application.errors import InvalidInput
from deployments.audit import Actor, record
from deployments.models import App
from deployments.validators import validate_registry_host

MAX_USERNAME = 200
MAX_PASSWORD = 4096


def set_registry_credentials(app: App, *, host: str, username: str, password: str, actor: Actor) -> None:
    """An empty host removes them; an empty password keeps the stored one (same host only)."""
    host, username, password = host.strip().lower(), username.strip(), password.strip()
    problems = _problems(host, username, password)
    if host and not password and (host != app.registry_host or not app.encrypted_registry_password):
        problems.setdefault("registry_password", []).append("a password or token for this registry")
    if problems:
        raise InvalidInput(problems)
    with transaction.atomic():
        if not host:
            app.registry_host, app.registry_username, app.registry_password = "", "", ""
        else:
            app.registry_host, app.registry_username = host, username
            if password:
                app.registry_password = password
        app.save(update_fields=["registry_host", "registry_username", "encrypted_registry_password"])
        record(actor, "app.registry", app, f"registry credentials for {host} saved" if host else
               "registry credentials removed")


def _problems(host: str, username: str, password: str) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    try:
        validate_registry_host(host)
    except ValidationError as error:
        problems["registry_host"] = list(error.messages)
    if host and not username:
        problems["registry_username"] = ["the username for this registry"]
    if len(username) > MAX_USERNAME or any(ord(c) < 32 or ord(c) == 127 for c in username):
        problems["registry_username"] = [f"at most {MAX_USERNAME} printable characters"]
    if len(password) > MAX_PASSWORD or any(ord(c) <= 32 or ord(c) > 126 for c in password):
        problems["registry_password"] = ["a password or token is one word of printable ASCII"]
    return problems

"""Create the user `admin` when there is no user at all (first `make run`)."""
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Create the superuser 'admin' if no user exists (password: SWITCHYARD_ADMIN_PASSWORD, or "
            "generated into <data dir>/admin-password, mode 0600).")

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        if users.exists():
            return
        chosen = os.environ.get("SWITCHYARD_ADMIN_PASSWORD", "")
        password = chosen or secrets.token_urlsafe(16)
        admin = get_user_model()(username="admin")
        try:
            validate_password(password, admin)
        except ValidationError as error:
            # The first account is a superuser: the same rules as every other password, before it exists.
            raise CommandError(f"SWITCHYARD_ADMIN_PASSWORD is too weak: {' '.join(error.messages)} "
                               f"Choose another: {' '.join(password_validators_help_texts())}")
        if not chosen:
            path = _write_private(settings.DATA_DIR / PASSWORD_FILE, password)
        users.create_superuser("admin", "", password)
        if chosen:
            self.stdout.write("Created user 'admin' with the password from SWITCHYARD_ADMIN_PASSWORD")
        else:
            # Never on the output: under Compose (the `migrate` service) that is a container log,
            # which the panel's log viewer and anyone with `docker logs` can read.
            self.stdout.write(f"Created user 'admin'; its generated password is in {path} (readable by its owner "
                              "only): log in, change it, then delete the file")


PASSWORD_FILE = "admin-password"


def _write_private(path: Path, text: str) -> Path:
    """Written with mode 0600 from the start (never readable by others, not even for a moment)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
    return path

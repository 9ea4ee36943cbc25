"""Create the user `admin` when there is no user at all (first `make run`)."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no user exists (password: SWITCHYARD_ADMIN_PASSWORD or generated)."

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
        users.create_superuser("admin", "", password)
        if chosen:
            self.stdout.write("Created user 'admin' with the password from SWITCHYARD_ADMIN_PASSWORD")
        else:
            self.stdout.write(f"Created user 'admin' with password: {password}  (shown only this once)")

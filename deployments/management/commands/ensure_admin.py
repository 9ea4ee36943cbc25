"""Create the user `admin` when there is no user at all (first `make run`)."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no user exists (password: SWITCHYARD_ADMIN_PASSWORD or generated)."

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        if users.exists():
            return
        password = os.environ.get("SWITCHYARD_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser("admin", "", password)
        if os.environ.get("SWITCHYARD_ADMIN_PASSWORD"):
            self.stdout.write("Created user 'admin' with the password from SWITCHYARD_ADMIN_PASSWORD")
        else:
            self.stdout.write(f"Created user 'admin' with password: {password}  (shown only this once)")

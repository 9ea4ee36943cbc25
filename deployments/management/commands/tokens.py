"""`manage.py tokens create USERNAME [--name NAME]`: prints the new token alone on its last line."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.application import members
from deployments.audit import Actor


class Command(BaseCommand):
    help = "Create an API token for a user (it acts as that user)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it once")
        create.add_argument("username")
        create.add_argument("--name", default="cli", help="what the token is for")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"there is no user {options['username']!r}")
        token = members.create_token(name=options["name"], actor=Actor(user=user, via=Actor.cli().via, label="cli"))
        self.stdout.write(f"Token {options['name']!r} for {user.get_username()} (shown only now):")
        self.stdout.write(token)

"""`manage.py apps create|update|list|delete`."""
import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.application import apps
from deployments.application.app_settings import (
    ASKED_AT_CREATE,
    SETTINGS_FIELDS,
    AppSpec,
    default,
    help_text,
    python_type,
)
from deployments.application.apps import AppChanges
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.masking import without_password
from deployments.models import App


def percent_list(text: str) -> list[int]:
    """--canary-steps 5,25,50,100 (an empty string: no canary)."""
    try:
        return [int(word) for word in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole percentages, e.g. 5,25,50,100") from None


# Options for the app's settings come from the settings schema (application/app_settings.py).
OPTION_TYPES = {str: str, int: int, float: float, list[int]: percent_list}
# The options `apps create` had before the schema: their shorter names stay.
CREATE_SPELLINGS = {"repo_url": "--repo", "compose_file": "--compose", "web_service": "--web"}


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise CommandError(f"--env {text!r} is not KEY=VALUE")
    return key, value


class Command(BaseCommand):
    help = "Create, list and delete apps."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="register an app (a git repo with a Dockerfile)")
        create.add_argument("name")
        _add_create_options(create)
        create.add_argument("--domain", action="append", default=[], help="a hostname; repeatable")
        create.add_argument("--env", action="append", default=[], type=_env_pair, help="KEY=VALUE; repeatable")
        create.add_argument("--owner", help="username of the owner (default: the first superuser)")
        create.add_argument("--no-zero-downtime", action="store_true",
                            help="recreate instead: stop the old release first (a short 503 gap)")
        _add_setting_options(create, [n for n in SETTINGS_FIELDS if n not in ASKED_AT_CREATE])
        update = sub.add_parser("update", help="change an app's settings (the rest stays as it is)")
        update.add_argument("name")
        _add_setting_options(update, SETTINGS_FIELDS)
        update.add_argument("--domain", action="append", help="a hostname; repeatable; replaces the app's domains")
        update.add_argument("--env", action="append", default=[], type=_env_pair, help="KEY=VALUE; repeatable")
        update.add_argument("--unset-env", action="append", default=[], metavar="KEY", help="remove KEY; repeatable")
        update.add_argument("--zero-downtime", action=argparse.BooleanOptionalAction)
        update.add_argument("--auto-deploy", action=argparse.BooleanOptionalAction)
        sub.add_parser("list", help="list apps")
        delete = sub.add_parser("delete", help="stop an app's containers and remove it")
        delete.add_argument("name")

    def handle(self, *args, **options) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict) -> None:
        spec = AppSpec.of(name=options["name"], domains=options["domain"], env=dict(options["env"]),
                          zero_downtime=not options["no_zero_downtime"], **_given_settings(options))
        try:
            app = apps.create_app(spec, actor=Actor.cli(), owner=self._owner(options["owner"]))
        except InvalidInput as error:
            raise _refused(error)
        self.stdout.write(f"Created {app.name}: http://{', http://'.join(app.hostnames())}")

    def _update(self, options: dict) -> None:
        app = App.objects.filter(name=options["name"]).first()
        if app is None:
            raise CommandError(f"No app named {options['name']!r}; `manage.py apps list` shows the apps")
        env = {**dict(options["env"]), **{key: None for key in options["unset_env"]}}
        changes = AppChanges(settings=_given_settings(options), domains=options["domain"], env=env,
                             zero_downtime=options["zero_downtime"], auto_deploy=options["auto_deploy"])
        try:
            apps.update_app(app, changes, actor=Actor.cli())
        except InvalidInput as error:
            raise _refused(error)
        self.stdout.write(f"Updated {app.name}; settings apply at the next deploy, domains now")

    def _owner(self, username: str | None):
        users = get_user_model().objects
        if username is None:
            return users.filter(is_superuser=True).order_by("id").first()
        owner = users.filter(username=username).first()
        if owner is None:
            raise CommandError(f"--owner: there is no user {username!r}")
        return owner

    def _list(self, options: dict) -> None:
        for app in App.objects.select_related("live_deployment").prefetch_related("domains"):
            live = app.live_deployment.short_sha if app.live_deployment else "-"
            self.stdout.write(f"{app.name}\t{live}\t{without_password(app.repo_url)}#{app.branch}\t{' '.join(app.hostnames())}")

    def _delete(self, options: dict) -> None:
        if apps.delete_app(options["name"], actor=Actor.cli()):
            self.stdout.write(f"Deleted {options['name']}")
        else:
            self.stdout.write(f"No app named {options['name']}; nothing to delete")


def _add_create_options(parser: CommandParser) -> None:
    """The settings asked when an app is created, each with the model's default (--repo required)."""
    for name in ASKED_AT_CREATE:
        option = CREATE_SPELLINGS.get(name, f"--{name.replace('_', '-')}")
        parser.add_argument(option, dest=name, type=OPTION_TYPES[python_type(name)], help=help_text(name),
                            **({"required": True} if name == "repo_url" else {"default": default(name)}))


def _add_setting_options(parser: CommandParser, names) -> None:
    """--NAME VALUE for each setting; a yes/no setting is --NAME / --no-NAME."""
    for name in names:
        option = f"--{name.replace('_', '-')}"
        if python_type(name) is bool:
            parser.add_argument(option, dest=name, action=argparse.BooleanOptionalAction, help=help_text(name))
        else:
            parser.add_argument(option, dest=name, type=OPTION_TYPES[python_type(name)], help=help_text(name))


def _given_settings(options: dict) -> dict:
    return {name: options[name] for name in SETTINGS_FIELDS if options.get(name) is not None}


def _refused(error: InvalidInput) -> CommandError:
    return CommandError("\n".join(f"{name}: {m}" for name, msgs in error.errors.items() for m in msgs))

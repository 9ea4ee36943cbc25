"""`manage.py deploy NAME [--ref REF] [--follow]`."""
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.application import deploys
from deployments.application.errors import InvalidInput
from deployments.audit import Actor
from deployments.models import App, Deployment, LogLine

POLL_SECONDS = 0.2
QUEUED_HINT_SECONDS = 15
LAST_LINES_WAIT_SECONDS = 5  # after the final state, for the lines stored just after it


class Command(BaseCommand):
    help = "Queue a deployment; with --follow print its log live and exit non-zero unless it succeeded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--ref", help="branch, tag or commit (default: the app's branch)")
        parser.add_argument("--follow", action="store_true", help="print the log live until it ends")

    def handle(self, *args, **options) -> None:
        app = App.objects.filter(name=options["name"]).first()
        if app is None:
            raise CommandError(f"No app named {options['name']!r}; `manage.py apps list` shows the apps")
        try:
            deployment = deploys.deploy(app, ref=options["ref"], actor=Actor.cli())
        except InvalidInput as error:
            raise CommandError(str(error))
        self.stdout.write(f"Queued deployment #{deployment.id} of {app.name} ({deployment.ref})")
        if options["follow"]:
            self._follow(deployment)

    def _follow(self, deployment: Deployment) -> None:
        """Print stored log lines as they appear (the database is the complete log), until the
        deployment has ended and its last lines are stored (Deployment.log_complete)."""
        last_seq, started = 0, time.monotonic()
        hinted, ended_at = False, None
        while True:
            deployment.refresh_from_db()
            complete = deployment.log_complete()  # asked before reading: then the read has every line
            for line in LogLine.objects.filter(deployment=deployment, seq__gt=last_seq).order_by("seq"):
                self.stdout.write(line.text)
                last_seq = line.seq
            if deployment.is_final:
                ended_at = ended_at or time.monotonic()
                if complete or time.monotonic() - ended_at > LAST_LINES_WAIT_SECONDS:
                    break
            if deployment.state == Deployment.State.QUEUED and not hinted and time.monotonic() - started > QUEUED_HINT_SECONDS:
                self.stdout.write("Still queued: another deployment of this app runs, or no worker is running")
                hinted = True
            time.sleep(POLL_SECONDS)
        if deployment.state != Deployment.State.SUCCEEDED:
            raise CommandError(f"Deployment #{deployment.id} {deployment.state}: {deployment.error}")
        self.stdout.write(f"Deployment #{deployment.id} succeeded: {deployment.short_sha} is live")

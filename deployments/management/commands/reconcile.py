from django.core.management.base import BaseCommand

from deployments import tasks


class Command(BaseCommand):
    help = ("Make HAProxy and the containers match the database, end deployments whose worker died, "
            "and send stranded queued deployments to a worker.")

    def handle(self, *args, **options) -> None:
        for action in tasks.reconcile():  # the periodic task's body, run here and now
            self.stdout.write(action)

from django.core.management.base import BaseCommand

from deployments.engine.reconcile import reconcile


class Command(BaseCommand):
    help = "Make HAProxy and the containers match the database (live release of each app)."

    def handle(self, *args, **options) -> None:
        for action in reconcile():
            self.stdout.write(action)

"""Check or install the egress rules (engine/egress.py); `make run` and every worker start apply them."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.engine import egress


class Command(BaseCommand):
    help = "Check (--check, exit 1 if anything is missing) or install and repair (--apply) the egress rules."

    def add_arguments(self, parser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--check", action="store_true", help="report what is missing; change nothing")
        action.add_argument("--apply", action="store_true", help="install what is missing, repair what differs")

    def handle(self, *args, check: bool, apply: bool, **options) -> None:
        if not settings.SWITCHYARD["EGRESS_RULES"]:
            self.stdout.write("SWITCHYARD_EGRESS_RULES is off: Switchyard installs no egress rules "
                              "(the host's firewall must keep app containers off the host and private networks)")
            return
        try:
            if check:
                problems = egress.missing()
                if problems:
                    raise CommandError("egress rules not in place: " + "; ".join(problems) +
                                       " (manage.py egress --apply installs them)")
                self.stdout.write("egress rules in place")
                return
            repaired = egress.ensure()
        except egress.EgressError as error:
            raise CommandError(str(error)) from None
        if repaired:
            self.stdout.write("egress rules repaired: " + "; ".join(repaired))
        else:
            self.stdout.write("egress rules in place")

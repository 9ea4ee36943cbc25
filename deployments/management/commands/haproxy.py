"""`manage.py haproxy`: HAProxy for the apps, in the foreground (as `make run` uses it)."""
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments.haproxy import process as haproxy_process
from deployments.traffic import changes, target

CHECK_SECONDS = 0.5  # a killed HAProxy answers again within a second (one socket probe per check)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # supervisord and systemd stop with SIGTERM; treat it like Ctrl-C


class Command(BaseCommand):
    help = "Render HAProxy's config from the database, run HAProxy, restart it if it dies; Ctrl-C stops it."

    def handle(self, *args, **options) -> None:
        signal.signal(signal.SIGTERM, _interrupt)
        changes.sync_all(start=True)
        host, port = settings.SWITCHYARD["HTTP_BIND"]
        self.stdout.write(f"HAProxy serves apps on http://{host}:{port} (config in {target.paths().directory})")
        try:
            while True:
                time.sleep(CHECK_SECONDS)
                if not haproxy_process.is_running(target.paths()):
                    self.stdout.write("HAProxy is not answering; starting it again from the database")
                    changes.sync_all(start=True)
        except KeyboardInterrupt:
            pass
        finally:
            haproxy_process.stop(target.paths())
            self.stdout.write("HAProxy stopped")

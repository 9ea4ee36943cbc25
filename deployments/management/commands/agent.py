"""`manage.py agent --host NAME`: this machine's agent in the fleet (deployments/fleet/). The
command `manage.py hosts add` prints sets its two variables: SWITCHYARD_AGENT_BROKER (the broker,
with the host's own credential) and SWITCHYARD_PANEL_FINGERPRINT (the certificate whose signature
the agent's work must carry). `make agent HOST=NAME` installs what is missing first."""
import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.fleet import agent, broker, keys


class Command(BaseCommand):
    help = "Run this host's agent: a worker on the queue host.NAME, with this machine's Docker and HAProxy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", required=True, help="the host's name, as `manage.py hosts add` was given it")
        parser.add_argument("--concurrency", type=int, default=4, help="tasks run at once (default 4)")

    def handle(self, *args, **options) -> None:
        host = options["host"]
        broker_url, fingerprint = _variable("SWITCHYARD_AGENT_BROKER"), _variable("SWITCHYARD_PANEL_FINGERPRINT")
        try:
            certificate = agent.panel_certificate(host, broker_url, fingerprint)
        except agent.Refused as refusal:
            raise CommandError(str(refusal)) from None
        app = broker.agent_app(host, broker_url, certificate)
        agent.register_tasks(app)
        app.steps["worker"].add(agent.Heartbeat)
        worker = app.Worker(queues=[keys.queue(host)], concurrency=options["concurrency"],
                            hostname=f"agent-{host}@%h", loglevel="INFO", **broker.AGENT_WORKER_OPTIONS)
        worker.start()
        raise SystemExit(worker.exitcode)


def _variable(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise CommandError(f"{name} is not set: run the command `manage.py hosts add` (or `hosts credential`) printed")
    return value

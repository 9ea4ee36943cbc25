"""`manage.py hosts add|list|credential|revoke|remove`: the fleet's machines (deployments/fleet/).
`add` and `credential` print the one command that starts the host's agent; its credential is
shown only then."""
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from deployments.application import hosts
from deployments.application.errors import InvalidInput, NotPossible
from deployments.audit import Actor
from deployments.fleet import heartbeats

COLUMNS = "{:<16} {:<15} {:<8} {:<10} {:<8} {:<12} {:>10} {:>5} {:>13}  {}"


class Command(BaseCommand):
    help = "Manage the fleet's hosts: each runs an agent with its own Docker and HAProxy."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a host and print the command that starts its agent")
        add.add_argument("name")
        add.add_argument("--address", required=True, help="the host's private address")
        add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="placement label (repeatable)")
        sub.add_parser("list", help="each host's state, heartbeat, versions, containers, CPU and memory")
        for action, text in (("credential", "a new credential (the old one stops working); prints the command"),
                             ("revoke", "the host's credential stops opening the broker, at once"),
                             ("remove", "remove a host that runs none of Switchyard's containers")):
            sub.add_parser(action, help=text).add_argument("name")

    def handle(self, *args, **options) -> None:
        actor = Actor.cli()
        try:
            getattr(self, f"_{options['action']}")(options, actor)
        except (InvalidInput, NotPossible) as error:
            raise CommandError(str(error)) from None

    def _add(self, options: dict, actor: Actor) -> None:
        added = hosts.add_host(name=options["name"], address=options["address"], labels=options["label"], actor=actor)
        self._print_command(added)

    def _credential(self, options: dict, actor: Actor) -> None:
        self._print_command(hosts.new_credential(name=options["name"], actor=actor))

    def _revoke(self, options: dict, actor: Actor) -> None:
        hosts.revoke_host(name=options["name"], actor=actor)
        self.stdout.write(f"Host {options['name']}: credential revoked; its agent is cut off from the broker.")

    def _remove(self, options: dict, actor: Actor) -> None:
        hosts.remove_host(name=options["name"], actor=actor)
        self.stdout.write(f"Host {options['name']} removed.")

    def _list(self, options: dict, actor: Actor) -> None:
        heartbeats.read_all()
        self.stdout.write(COLUMNS.format("NAME", "ADDRESS", "STATE", "HEARTBEAT", "DOCKER", "HAPROXY", "CONTAINERS",
                                         "CPUS", "MEMORY FREE", "LABELS"))
        for host in hosts.list_hosts():
            self.stdout.write(_row(host))

    def _print_command(self, added: hosts.AddedHost) -> None:
        self.stdout.write(f"Host {added.host.name} ({added.host.address}). On it, from Switchyard's directory, run "
                          f"(the credential is shown only now):")
        self.stdout.write(added.command)


def _row(host) -> str:
    facts = host.facts
    seen = "never" if host.last_heartbeat_at is None else \
        f"{(timezone.now() - host.last_heartbeat_at).total_seconds():.0f}s ago"
    state = "revoked" if host.revoked_at else host.state
    containers = f"{facts.get('containers_running', 0)}/{facts.get('containers', 0)}" if facts else "-"
    memory = f"{facts.get('memory_available_mb', 0)}/{facts.get('memory_total_mb', 0)} MiB" if facts else "-"
    labels = ",".join(f"{key}={value}" for key, value in host.labels.items()) or "-"
    return COLUMNS.format(host.name, host.address, state, seen, facts.get("docker_version", "-") or "down",
                          facts.get("haproxy_version", "-") or "-", containers, facts.get("cpus", "-"), memory, labels)

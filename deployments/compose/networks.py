"""`networks` as Compose files write them, mapped onto the one network each app has: every network
the file names is that network, so services reach each other as they would on the file's
networks (and also where Compose would keep two networks apart: the app's containers are one
trust domain, other apps stay out). What a network's definition asks is accepted where it is
harmless and said in a notice where it is not done; what would reach outside the app is refused.

Each service's `aliases` (on any of its networks) become extra names it is found by, beside its
service name."""
import re
from dataclasses import dataclass, field

ALIAS = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62})$")
ONE_NETWORK = "every service runs on the app's own network, where services find each other by service name"
IGNORED_TOP = ("driver", "driver_opts", "ipam", "internal", "attachable", "labels", "enable_ipv4", "enable_ipv6", "name")
IGNORED_SERVICE = ("ipv4_address", "ipv6_address", "link_local_ips", "mac_address", "priority", "gw_priority",
                   "driver_opts", "interface_name")
HARMLESS_MODES = ("bridge", "default")
MAX_ALIASES = 10


@dataclass
class Networks:
    aliases: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def read_top_level(document: dict) -> Networks:
    """The file's `networks:`; each is the app's network."""
    read = Networks()
    declared = document.get("networks") or {}
    if not isinstance(declared, dict):
        read.problems.append("networks: a mapping of network names")
        return read
    for name, definition in declared.items():
        definition = definition if isinstance(definition, dict) else {}
        if definition.get("external"):
            read.problems.append(f"networks.{name}.external: not supported: a network outside the app would join "
                                 "its containers to others'; " + ONE_NETWORK)
        ignored = [key for key in IGNORED_TOP if key in definition and key != "name"]
        if ignored:
            read.notices.append(f"networks.{name}: {', '.join(ignored)} ignored: it is the app's own network "
                                "(a bridge with an address range and egress rules of Switchyard's)")
    return read


def read_service_networks(where: str, definition: dict, *, declared: set[str]) -> Networks:
    """One service's `networks` (a list of names or a mapping with aliases) and `network_mode`."""
    read = Networks()
    mode = definition.get("network_mode")
    if mode is not None:
        if mode in HARMLESS_MODES:
            read.notices.append(f"{where}.network_mode: {mode}: the service runs on the app's own network")
        else:
            read.problems.append(f"{where}.network_mode: {mode} not supported: {ONE_NETWORK}")
    value = definition.get("networks")
    if value is None:
        return read
    entries = {name: {} for name in value} if isinstance(value, list) else value
    if not isinstance(entries, dict):
        read.problems.append(f"{where}.networks: a list of network names or a mapping")
        return read
    aliases: list[str] = []
    for name, entry in entries.items():
        if name != "default" and name not in declared:
            read.problems.append(f"{where}.networks.{name}: not declared under the top-level networks:")
        entry = entry if isinstance(entry, dict) else {}
        ignored = [key for key in IGNORED_SERVICE if key in entry]
        if ignored:
            read.notices.append(f"{where}.networks.{name}: {', '.join(ignored)} ignored: addresses come from the "
                                "app's network; services find each other by name")
        for alias in entry.get("aliases") or []:
            if not isinstance(alias, str) or not ALIAS.match(alias):
                read.problems.append(f"{where}.networks.{name}.aliases: {alias!r}: a host name (letters, digits, "
                                     "'_', '.' and '-', at most 63)")
            elif alias not in aliases:
                aliases.append(alias)
    if len(aliases) > MAX_ALIASES:
        read.problems.append(f"{where}.networks: at most {MAX_ALIASES} aliases")
    read.aliases = tuple(aliases)
    return read

"""`ports:` as people write them (`80:80`, `"80"`, `8080:80`, `127.0.0.1:8080:80`, the long
syntax). Nothing is ever published on the host: traffic reaches an app only through HAProxy,
and a published port would bypass routing, TLS and the panel's checks, or take a port the host's
own services need. So the web service's ports only say which container port HAProxy routes to
(the target); other services' ports (UDP too) are ignored, with a notice, since services reach
each other by service name on any port. A UDP port on the web service is refused: HAProxy
routes HTTP, and nothing else reaches a container from outside."""
import re
from dataclasses import dataclass

# [host_ip:][published:]target[/protocol]; host_ip may be [IPv6]; published and target may be ranges
_SHORT = re.compile(r"^(?:(?:\[[0-9a-fA-F:.]+\]|[0-9]+\.[0-9.]+):)?(?:(?P<published>[0-9-]*):)?"
                    r"(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<protocol>[a-zA-Z]+))?$")
UDP = "UDP is not supported: HAProxy routes HTTP (TCP) to the web service, and nothing else reaches a container"


@dataclass(frozen=True)
class ServicePorts:
    routed_port: int | None
    problems: tuple[str, ...]
    notices: tuple[str, ...]


@dataclass(frozen=True)
class _Port:
    shown: str
    target: str  # a port or a range
    protocol: str
    published: bool


def read_ports(where: str, ports, *, web: bool, app_port: int | None) -> ServicePorts:
    """The container port to route (web only) and what to tell the user about a service's ports."""
    problems, entries = [], []
    for item in ports or []:
        entry = _entry(item)
        if entry is None:
            problems.append(f"{where}.ports: {item!r}: not a port ([HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL])")
        elif entry.protocol != "tcp" and web:
            problems.append(f"{where}.ports: {entry.shown}: {UDP if entry.protocol == 'udp' else 'only TCP'}")
        else:
            entries.append(entry)
    if not entries or problems:
        return ServicePorts(None, tuple(problems), ())
    if not web:  # any protocol: inside the app's network, services reach each other on every port
        return ServicePorts(None, (), (f"{where}.ports: {', '.join(e.shown for e in entries)} ignored: nothing is "
                                       "published on the host; the other services reach this one by its name",))
    return _web_port(where, entries, app_port)


def _web_port(where: str, entries: list["_Port"], app_port: int | None) -> ServicePorts:
    if ranges := [entry.shown for entry in entries if "-" in entry.target]:
        return ServicePorts(None, (f"{where}.ports: {ranges[0]}: a range; name the one port HAProxy routes to",), ())
    targets = list(dict.fromkeys(int(entry.target) for entry in entries))
    if bad := [port for port in targets if not 0 < port < 65536]:
        return ServicePorts(None, (f"{where}.ports: {bad[0]}: a port is 1 to 65535",), ())
    routed = app_port if app_port in targets else targets[0]
    notices = []
    if len(targets) > 1:
        notices.append(f"{where}.ports: several ports ({', '.join(map(str, targets))}); HAProxy routes to "
                       f"container port {routed}" + (" (the app's port setting)" if routed == app_port else
                                                     " (the first; set the app's port to choose another)"))
    if any(entry.published for entry in entries):
        notices.append(f"{where}.ports: nothing is published on the host; the app's domains reach container "
                       f"port {routed} through HAProxy")
    return ServicePorts(routed, (), tuple(notices))


def _entry(item) -> "_Port | None":
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return _Port(shown=str(item), target=str(item), protocol="tcp", published=False)
    if isinstance(item, str):
        match = _SHORT.match(item.strip())
        if not match:
            return None
        return _Port(shown=item, target=match["target"], protocol=(match["protocol"] or "tcp").lower(),
                     published=bool(match["published"]))
    if isinstance(item, dict) and str(item.get("target", "")).isdigit():
        return _Port(shown=f"{item['target']}" + (f" (published {item['published']})" if "published" in item else ""),
                     target=str(item["target"]), protocol=str(item.get("protocol", "tcp")).lower(),
                     published="published" in item)
    return None

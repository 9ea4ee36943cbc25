"""Where a repository URL may point: public addresses, unless an administrator allows more.

A tenant's repository URL is fetched by the worker, on the host's network. Left open, it reads
the host's own services (`http://127.1:6379`), the cloud metadata address or the LAN, in any
spelling of the address (`0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`) or by a name that
resolves there. So the host is resolved, every address it resolves to must be public (or in
SWITCHYARD_REPOSITORY_ALLOWED_NETWORKS), and git is then pinned to the address that was checked
(git/source.py), at every fetch: a name that resolves elsewhere tomorrow is checked again.
A repository on this machine (a path, file://) or on a private address is allowed to URLs the
CLI or a superuser set (App.repo_private_allowed).
"""
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

PLAIN_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}


class Refused(Exception):
    """The URL points at this machine or a private network; the message says what to do."""


class Unresolvable(Refused):
    """The host has no address now (git, asked to use it, would fail the same way)."""


@dataclass(frozen=True)
class Remote:
    scheme: str  # https, http, ssh, git (refused to tenants); "file" for a path on this machine
    host: str = ""
    port: int = 0


def remote(url: str) -> Remote:
    """Scheme, host and port of a URL validators.validate_repo_url accepted (scp-like `user@host:path` is ssh)."""
    if url.startswith("/") or url.startswith("file:"):
        return Remote("file")
    if "\\" in url:
        raise Refused("a repository URL has no backslash (parsers disagree on where its host is)")
    if "://" not in url:
        return Remote("ssh", url.partition("@")[2].partition(":")[0].strip("[]").lower(), 22)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(f"{url!r} has a malformed host or port") from None
    scheme = parts.scheme.lower()
    return Remote(scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme, 0))


def public_address(remote_: Remote) -> str:
    """The address git is to connect to: the host resolved now, every address it has public
    (or allowed by the administrator). Raises Refused otherwise."""
    if remote_.scheme == "file":
        raise Refused("a repository on this machine (a path or file://): only the CLI or a superuser may use one; "
                      "give the repository's https://, ssh:// or git@host: URL")
    if remote_.scheme == "git":
        # git resolves a git:// host again itself, with no way to pin it to the checked address
        # (curl's resolve option, ssh's HostName): the name could point at this machine by then.
        raise Refused("git:// repositories are not fetched for tenants (their address cannot be pinned to the "
                      "one checked); give the repository's https:// or ssh:// URL")
    if not remote_.host:
        raise Refused("the repository URL names no host")
    if not PLAIN_HOST.fullmatch(remote_.host) and not _is_address(remote_.host):
        # What Python reads as the host must be what curl or ssh read: no room for a parser to differ.
        raise Refused(f"{remote_.host!r} is not a plain host name or address; give the URL as https://host/path")
    try:
        found = socket.getaddrinfo(remote_.host, remote_.port or None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(f"{remote_.host} does not resolve: {error}") from None
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in found))
    refused = [address for address in addresses if not allowed(ipaddress.ip_address(address))]
    if refused:
        raise Refused(f"{remote_.host} is {', '.join(refused)}: this machine or a private network, where only "
                      "the CLI or a superuser may point a repository unless an administrator allows that network "
                      "(SWITCHYARD_REPOSITORY_ALLOWED_NETWORKS); give a public repository's URL")
    return addresses[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Public, or in an allowed network. An IPv4 address written as IPv6 (::ffff:a.b.c.d,
    ::a.b.c.d, 64:ff9b::a.b.c.d, 2002:...) is judged as the IPv4 address it carries."""
    carried = _carried_ipv4(address)
    if any(address in network or (carried is not None and carried in network)
           for network in settings.SWITCHYARD["REPOSITORY_ALLOWED_NETWORKS"]):
        return True
    if carried is not None:
        return carried.is_global
    return address.is_global


def _carried_ipv4(address) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in ipaddress.ip_network("::/96") or address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None

"""HTTP POSTs to addresses users give (deploy-event targets), pinned to the address that was checked.

The host is resolved once; unless SWITCHYARD_EVENTS_ALLOW_PRIVATE, every address it resolves to
must be public, and the connection goes to that address (Host header and TLS name stay the
URL's), so a name that re-resolves to 127.0.0.1 after the check (DNS rebinding) cannot reach the
panel's own network. One total deadline covers resolving, connecting and reading.
"""
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

import urllib3
from django.conf import settings


class Unreachable(Exception):
    """Nothing to retry: the host does not exist, or is not a public address."""


class Failed(Exception):
    """This attempt failed (no answer, a timeout, a temporary DNS failure); a later one may work."""


def post(url: str, body: bytes, headers: dict[str, str], check_public: bool = True) -> int:
    """POST and return the HTTP status (redirects are not followed)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _address(parts.hostname, port, check_public and not settings.SWITCHYARD["EVENTS_ALLOW_PRIVATE"])
    timeout = urllib3.Timeout(total=settings.SWITCHYARD["EVENT_TIMEOUT"])
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, server_hostname=parts.hostname,
                                           assert_hostname=parts.hostname, ssl_context=ssl.create_default_context())
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with pool:
            response = pool.urlopen("POST", target, body=body, headers={"Host": host_header, **headers},
                                    redirect=False, preload_content=True)
    except urllib3.exceptions.HTTPError as error:
        raise Failed(f"{type(error).__name__}: {error}") from error
    return response.status


def _address(host: str, port: int, must_be_public: bool) -> str:
    try:
        found = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    except socket.gaierror as error:
        if error.errno == socket.EAI_NONAME:
            raise Unreachable(f"{host} does not resolve: {error}") from None
        raise Failed(f"{host} could not be resolved now: {error}") from None
    if must_be_public:
        private = sorted({a for a in found if not ipaddress.ip_address(a.split("%")[0]).is_global})
        if private:
            raise Unreachable(f"{host} resolves to {', '.join(private)}, which is not a public address "
                              "(SWITCHYARD_EVENTS_ALLOW_PRIVATE allows it)")
    return found[0]

"""Typed readers for environment variables.

Each raises ImproperlyConfigured naming the variable and what a valid value looks like,
so a typo in a deployment's environment stops start-up with a message instead of a
surprise later.
"""
import ipaddress
from urllib.parse import urlsplit
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from deployments.validators import HOSTNAME

REGISTRY_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?")


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number; set e.g. {name}={default}")
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name}={value} is out of range; use {minimum}..{maximum}")
    return value


def env_float(name: str, default: float, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number; set e.g. {name}={default}")
    if not minimum <= value <= maximum:  # also refuses nan
        raise ImproperlyConfigured(f"{name}={value} is out of range; use {minimum}..{maximum}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false")


def env_ipv4_network(name: str, default: str, longest_prefix: int) -> str:
    """An IPv4 range in CIDR notation (e.g. 172.16.0.0/16), no longer than /longest_prefix."""
    raw = env_str(name, default)
    try:
        network = ipaddress.IPv4Network(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an IPv4 range like 172.16.0.0/16 "
                                   "(address bits past the prefix must be 0); set e.g. "
                                   f"{name}={default}")
    if network.prefixlen > longest_prefix:
        raise ImproperlyConfigured(f"{name}={raw} is too small: give a /{longest_prefix} or larger (e.g. {default})")
    return str(network)


def env_networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR ranges (e.g. 127.0.0.1,10.0.0.0/8); empty: none."""
    raw = env_str(name, "")
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a list of addresses or ranges; set e.g. "
                                   f"{name}=127.0.0.1,10.0.0.0/8") from None


def env_registries(name: str, default: str) -> tuple[str, ...]:
    """Comma-separated registry hosts (e.g. docker.io,ghcr.io,registry.example.com:5000), lowercase."""
    raw = env_str(name, default)
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if any(not REGISTRY_HOST.fullmatch(host) for host in hosts):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a list of registry hosts; set e.g. {name}={default}")
    return hosts


RUNTIME_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def env_runtimes(name: str, default: str) -> tuple[str, ...]:
    """Comma-separated container runtime names as dockerd knows them (e.g. io.containerd.wasmedge.v1)."""
    raw = env_str(name, default)
    runtimes = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(not RUNTIME_NAME.fullmatch(runtime) for runtime in runtimes):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a list of runtime names; set e.g. {name}={default}")
    return runtimes


def env_url(name: str, default: str) -> str:
    """An http(s) base URL, returned without a trailing slash; "" if unset with no default."""
    raw = env_str(name, default).rstrip("/")
    if raw and (urlsplit(raw).scheme not in ("http", "https") or not urlsplit(raw).hostname
                or any(ord(c) <= 32 for c in raw)):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an http(s) URL; set e.g. {name}=https://git.example.com")
    return raw


def optional_env_bind(name: str) -> tuple[str, int] | None:
    """HOST:PORT as env_bind, or None when the variable is unset or empty."""
    return env_bind(name, "") if env_str(name, "") else None


def env_bind(name: str, default: str) -> tuple[str, int]:
    """An address as HOST:PORT, returned split; PORT must be 1..65535."""
    raw = env_str(name, default)
    host, sep, port = raw.rpartition(":")
    if not sep or not _bind_host(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(f"{name}={raw!r} is not HOST:PORT (an IP address or a host name); "
                                   f"set e.g. {name}={default}")
    return host, int(port)


def _bind_host(host: str) -> bool:
    """An IP address (IPv6 in brackets) or a host name: it is written into HAProxy's config."""
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        return True
    except ValueError:
        return bool(HOSTNAME.fullmatch(host.lower()))


def env_acme_directory(name: str, default: str) -> str:
    """An ACME directory URL (http or https), or "off" (returned as ""): no automatic HTTPS."""
    raw = env_str(name, default)
    if raw.lower() == "off":
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in ("https", "http") or not parsed.hostname or any(c.isspace() for c in raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an ACME directory URL; set e.g. {name}={default} "
                                   f"(or {name}=off for no automatic HTTPS)")
    return raw


def env_file(name: str) -> str:
    """The path of a file that must exist, or "" when unset."""
    raw = env_str(name, "")
    if raw and not os.path.isfile(raw):
        raise ImproperlyConfigured(f"{name}={raw!r}: no such file; give the path of a PEM file, or leave it unset")
    return raw


def env_email(name: str) -> str:
    raw = env_str(name, "")
    if raw and not EMAIL.fullmatch(raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an e-mail address; set e.g. {name}=ops@example.com")
    return raw


EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def env_socket_path(name: str, default: Path) -> Path:
    """An absolute path for a unix socket, written into HAProxy's config as one word."""
    raw = env_str(name, str(default))
    if not raw.startswith("/") or not SOCKET_PATH.fullmatch(raw) or len(raw.encode()) > 100:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a socket path; give an absolute path of at most 100 "
                                   f"characters from A-Z a-z 0-9 / . _ -, e.g. {name}=/run/switchyard/stats.sock")
    return Path(raw)


SOCKET_PATH = re.compile(r"[A-Za-z0-9/._-]+")


def env_docker_url(name: str) -> str:
    """A Docker API address (unix://, tcp://, http://), or "" for the local daemon."""
    raw = env_str(name, "")
    if raw and (urlparse(raw).scheme not in ("unix", "tcp", "http") or any(c.isspace() for c in raw)):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a Docker API address; set e.g. {name}=tcp://docker-logs:2375 "
                                   "or leave it unset for the local daemon")
    return raw


def env_hostname(name: str) -> str:
    """A DNS name (lower-cased), or "" when unset."""
    raw = env_str(name, "").lower()
    if raw and not HOSTNAME.fullmatch(raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a host name; set e.g. {name}=panel.example.com "
                                   "(no scheme, port or path)")
    return raw

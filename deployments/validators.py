"""Validation of what users type: app names, git refs, repo URLs, hostnames, env keys.

Everything here ends up in argument lists, HAProxy config, container names or Docker
labels, so the rules are strict and every message says what to type instead.
"""
import ipaddress
import math
import re
import shlex
import socket
from urllib.parse import quote, urlsplit

from django.core.exceptions import ValidationError

from deployments.compose.profiles import profiles_problem
from deployments.compose.service_names import SERVICE_NAME  # Compose's grammar, shared with the reader

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
# A safe subset of git's ref grammar: no shell metacharacters, no option look-alikes.
GIT_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# \S would let control characters (a NUL breaks every subprocess call) through.
REPO_URL = re.compile(r"^(https?://|ssh://|git://|file://|/|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:)[^\s\x00-\x1f\x7f]+$")
DOCKERFILE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,199}$")
PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986 path and query characters, minus what HAProxy's config or runtime API give a
# meaning to ($ expands variables, ' quotes, ; separates runtime commands) and minus #
# (a fragment is never sent). Everything else a person needs can be percent-encoded.
HEALTH_PATH_CHAR = re.compile(r"[A-Za-z0-9\-._~!&()*+,=:@/?]|%[0-9A-Fa-f]{2}")
HEALTH_PATH = re.compile(rf"/(?:{HEALTH_PATH_CHAR.pattern})*")


def validate_app_name(value: str) -> None:
    if not APP_NAME.fullmatch(value or ""):
        raise ValidationError(
            f"{value!r} is not a valid app name: use 1-32 lowercase letters, digits and "
            "hyphens, starting with a letter and not ending with a hyphen (e.g. my-app)"
        )


def validate_git_ref(value: str) -> None:
    if not GIT_REF.fullmatch(value or "") or ".." in value or value.endswith((".lock", "/", ".")) or "//" in value:
        raise ValidationError(
            f"{value!r} is not a usable git branch, tag or commit: use letters, digits and . _ / - "
            "only (no spaces or shell characters such as ; $ ` |), not starting with - or ending with /"
        )


def validate_repo_url(value: str) -> None:
    if not REPO_URL.fullmatch(value or "") or value.startswith("-") or "::" in value.split("/")[0]:
        raise ValidationError(
            f"{value!r} is not a git repository URL: use https://host/owner/repo.git, "
            "ssh://host/repo, git@host:owner/repo.git or an absolute path"
        )


def validate_hostname(value: str) -> None:
    if not HOSTNAME.fullmatch(value or ""):
        raise ValidationError(f"{value!r} is not a hostname: use lowercase letters, digits, hyphens and dots (e.g. app.example.com)")


def validate_domain(value: str) -> None:
    """A name a tenant may give an app: a hostname that is not a wildcard, an address in any
    spelling (127.1, 0x7f000001, 2130706433 are all 127.0.0.1 to a resolver) or a localhost name."""
    if value.startswith("*"):
        raise ValidationError(f"{value!r}: wildcard domains are not served; list each name (e.g. www.example.com)")
    validate_hostname(value)
    if _is_address(value):
        raise ValidationError(f"{value!r} is an IP address, not a domain name; give the name that points at it")
    if value == "localhost" or value.endswith(".localhost"):
        raise ValidationError(f"{value!r}: localhost names are reserved (every app answers on NAME.localhost "
                              "where those are on)")


def _is_address(name: str) -> bool:
    """Every spelling a resolver reads as an IPv4 address (inet_aton: octal, hex, 1-4 parts), or a
    name whose last label is a number (no top-level domain is)."""
    try:
        socket.inet_aton(name)
        return True
    except OSError:
        return name.rsplit(".", 1)[-1].isdigit() or bool(re.fullmatch(r"0x[0-9a-f]+", name.rsplit(".", 1)[-1]))


def validate_host_header(value: str) -> None:
    host, colon, port = value.partition(":")
    try:
        validate_hostname(host)
    except ValidationError:
        raise ValidationError(f"{value!r} is not a Host header: use a hostname, optionally with :port (e.g. app.example.com)")
    # isdigit() alone would let "²" through to int() (a ValueError, not a message).
    if colon and not (PORT.fullmatch(port) and 0 < int(port) < 65536):
        raise ValidationError(f"{value!r} has a port that is not 1-65535")


def validate_env_key(value: str) -> None:
    if not ENV_KEY.fullmatch(value or ""):
        raise ValidationError(f"{value!r} is not an environment variable name: use letters, digits and _, not starting with a digit")


def validate_health_path(value: str) -> None:
    if len(value) > 200:
        raise ValidationError(f"{value[:40]!r}... is too long for a health check path: use at most 200 characters")
    if HEALTH_PATH.fullmatch(value):
        return
    if not value.startswith("/"):
        raise ValidationError(f"{value!r} is not a health check path: start it with / (e.g. /health)")
    raise ValidationError(
        f"{value!r} is not a health check path: use letters, digits and - . _ ~ ! & ( ) * + , = : @ / ? only, "
        f"and percent-encode anything else: {_percent_encoding_hint(value)} (e.g. /health?full=1&name=a%20b)"
    )


def _percent_encoding_hint(value: str) -> str:
    """What to type instead of each character the grammar refuses, e.g. `write %22 for "`."""
    unsafe = dict.fromkeys(HEALTH_PATH_CHAR.sub("", value))  # a lone % is left over too: %25
    return ", ".join(f"write {quote(c, safe='')} for {c!r}" for c in unsafe)




def validate_compose_file(value: str) -> None:
    """Blank: the app is a single Dockerfile."""
    if value and (not DOCKERFILE.fullmatch(value) or ".." in value.split("/")):
        raise ValidationError(f"{value!r} is not a compose file path: give a path inside the repository, "
                              "e.g. compose.yaml or deploy/docker-compose.yml")


REGISTRY_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?")


def validate_registry_host(value: str) -> None:
    """A registry as image references name it (registry.example.com, host:5000), no scheme or path."""
    if value and not REGISTRY_HOST.fullmatch(value):
        raise ValidationError("a registry host, as in image names: registry.example.com or registry.example.com:5000")


def validate_service_name(value: str) -> None:
    if not SERVICE_NAME.fullmatch(value or ""):
        raise ValidationError(f"{value!r} is not a service name: letters, digits, '.', '_' and '-', "
                              "at most 31, starting with a letter or digit, as in the compose file")


def validate_compose_profiles(value: str) -> None:
    if problem := profiles_problem(value):
        raise ValidationError(problem)


def validate_dockerfile(value: str) -> None:
    if not DOCKERFILE.fullmatch(value or "") or ".." in value.split("/"):
        raise ValidationError(f"{value!r} is not a Dockerfile path: give a path inside the repository, "
                              "e.g. Dockerfile or docker/web.Dockerfile")


# Docker's default capability set: an app may take back some of these; every other is dropped.
GRANTABLE_CAPABILITIES = ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                          "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def validate_capabilities(value: str) -> None:
    unknown = [name for name in value.split() if name not in GRANTABLE_CAPABILITIES]
    if unknown:
        raise ValidationError(f"{', '.join(unknown)}: not a capability an app may have; choose from "
                              f"{' '.join(GRANTABLE_CAPABILITIES)} (space separated), or leave empty")


def validate_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValidationError("must be a finite number")


def release_command_words(value: str) -> list[str]:
    """A release command as Docker runs it: words split as a shell would, but no shell runs it
    (the image may have none); `sh -c '...'` where one is wanted."""
    try:
        return shlex.split(value)
    except ValueError as error:
        raise ValidationError(f"{value!r} is not a command: {error} (quote as in a shell)") from None


def validate_release_command(value: str) -> None:
    if any(ord(c) < 32 for c in value):
        raise ValidationError("a release command is one line: no control characters")
    if value and not release_command_words(value):
        raise ValidationError("the release command has no words; leave it empty for none")


MAX_CANARY_STEPS = 10


def validate_canary_steps(value) -> None:
    """Empty: no canary. Otherwise ascending whole percentages of the traffic on the new release,
    the last 100 (the switch)."""
    if value in (None, []):
        return
    if not isinstance(value, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        raise ValidationError("canary steps are whole percentages, e.g. 5, 25, 50, 100")
    if len(value) > MAX_CANARY_STEPS:
        raise ValidationError(f"at most {MAX_CANARY_STEPS} canary steps")
    if any(not 1 <= p <= 100 for p in value) or any(a >= b for a, b in zip(value, value[1:])):
        raise ValidationError(f"canary steps {value} must rise, each between 1 and 100")
    if value[-1] != 100:
        raise ValidationError(f"the last canary step must be 100 (all traffic on the new release), not {value[-1]}")


def validate_event_url(value: str) -> None:
    """Where deploy events are POSTed: http(s), a host name or address, no credentials (a token
    belongs in the path). Whether the host is public is checked again at each send (outgoing/events.py)."""
    if not value:
        return
    if any(ord(c) <= 32 or ord(c) > 126 for c in value):
        raise ValidationError("the URL has spaces or characters outside ASCII; percent-encode them")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:  # a malformed [IPv6] host or port
        raise ValidationError(f"{value!r} is not an http(s) URL, e.g. https://hooks.example.com/deploys") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or not _host_or_address(parts.hostname):
        raise ValidationError(f"{value!r} is not an http(s) URL, e.g. https://hooks.example.com/deploys")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("put no user or password in the URL; deliveries are signed with the target's secret")


def _host_or_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOSTNAME.fullmatch(host))


EMAIL_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
MAX_EMAILS = 10


def email_addresses(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]


def validate_emails(value: str) -> None:
    addresses = email_addresses(value)
    wrong = [address for address in addresses if not EMAIL_ADDRESS.fullmatch(address)]
    if wrong:
        raise ValidationError(f"{', '.join(wrong)}: not an e-mail address")
    if len(addresses) > MAX_EMAILS:
        raise ValidationError(f"at most {MAX_EMAILS} addresses")

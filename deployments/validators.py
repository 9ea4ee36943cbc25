"""Validation of what users type: app names, git refs, repo URLs, hostnames, env keys.

Everything here ends up in argument lists, HAProxy config, container names or Docker
labels, so the rules are strict and every message says what to type instead.
"""
import math
import re
from urllib.parse import quote

from django.core.exceptions import ValidationError

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


SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")


def validate_compose_file(value: str) -> None:
    """Blank: the app is a single Dockerfile."""
    if value and (not DOCKERFILE.fullmatch(value) or ".." in value.split("/")):
        raise ValidationError(f"{value!r} is not a compose file path: give a path inside the repository, "
                              "e.g. compose.yaml or deploy/docker-compose.yml")


def validate_service_name(value: str) -> None:
    if not SERVICE_NAME.fullmatch(value or ""):
        raise ValidationError(f"{value!r} is not a service name: lower-case letters, digits, '_' and '-', "
                              "at most 31, as in the compose file")


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

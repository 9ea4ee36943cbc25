"""Validation of what users type: app names, git refs, repo URLs, hostnames, env keys.

Everything here ends up in argument lists, HAProxy config, container names or Docker
labels, so the rules are strict and every message says what to type instead.
"""
import math
import re

from django.core.exceptions import ValidationError

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
# A safe subset of git's ref grammar: no shell metacharacters, no option look-alikes.
GIT_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# \S would let control characters (a NUL breaks every subprocess call) through.
REPO_URL = re.compile(r"^(https?://|ssh://|git://|file://|/|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:)[^\s\x00-\x1f\x7f]+$")
DOCKERFILE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,199}$")


def validate_app_name(value: str) -> None:
    if not APP_NAME.match(value or ""):
        raise ValidationError(
            f"{value!r} is not a valid app name: use 1-32 lowercase letters, digits and "
            "hyphens, starting with a letter and not ending with a hyphen (e.g. my-app)"
        )


def validate_git_ref(value: str) -> None:
    if not GIT_REF.match(value or "") or ".." in value or value.endswith((".lock", "/", ".")) or "//" in value:
        raise ValidationError(
            f"{value!r} is not a usable git branch, tag or commit: use letters, digits and . _ / - "
            "only (no spaces or shell characters such as ; $ ` |), not starting with - or ending with /"
        )


def validate_repo_url(value: str) -> None:
    if not REPO_URL.match(value or "") or value.startswith("-") or "::" in value.split("/")[0]:
        raise ValidationError(
            f"{value!r} is not a git repository URL: use https://host/owner/repo.git, "
            "ssh://host/repo, git@host:owner/repo.git or an absolute path"
        )


def validate_hostname(value: str) -> None:
    if not HOSTNAME.match(value or ""):
        raise ValidationError(f"{value!r} is not a hostname: use lowercase letters, digits, hyphens and dots (e.g. app.example.com)")


def validate_host_header(value: str) -> None:
    host, _, port = value.partition(":")
    try:
        validate_hostname(host)
    except ValidationError:
        raise ValidationError(f"{value!r} is not a Host header: use a hostname, optionally with :port (e.g. app.example.com)")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValidationError(f"{value!r} has a port that is not 1-65535")


def validate_env_key(value: str) -> None:
    if not ENV_KEY.match(value or ""):
        raise ValidationError(f"{value!r} is not an environment variable name: use letters, digits and _, not starting with a digit")


def validate_health_path(value: str) -> None:
    if not value.startswith("/") or any(c.isspace() for c in value) or len(value) > 200:
        raise ValidationError(f"{value!r} is not a health check path: it must start with / and contain no spaces (e.g. /health)")


def validate_dockerfile(value: str) -> None:
    if not DOCKERFILE.match(value or "") or ".." in value.split("/"):
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

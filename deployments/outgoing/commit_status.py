"""Where a commit status goes, and the one rule it keeps: an app's provider token is only ever
sent to the host it was stored for.

A Gitea or Forgejo delivery also carries GitHub's headers; if a status followed the headers (or
one global setting), a Gitea token could be posted to api.github.com. So the destination follows
the token: App.commit_status_token_host records the host of the app's repository when the token
is set (a token stored before that has no host: it is derived from the repository URL once and
recorded). The status is posted to that host's API only:

- the configured API (SWITCHYARD_GITHUB_API_URL, _GITLAB_URL, _GITEA_URL) when it serves that host
  (the same host; for github.com, api.github.com), checked by the operator, so private is fine;
- otherwise the repository host's own API (https://HOST/api/v1 for Gitea and Forgejo, /api/v4 for
  GitLab, /api/v3 for GitHub Enterprise), a value a user gave: public addresses only, unless a
  superuser or the CLI set the repository (App.repo_private_allowed).

Anything else is refused with a reason a person can act on (recorded on the delivery), never sent:
a repository on this machine (no host), a repository moved to another host since the token was
set, github.com without GitHub's API configured, a repository name that is not owner/name.
"""
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from deployments.git import repo_policy
from deployments.models import App

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
GITLAB_PROJECT = re.compile(r"^[0-9]{1,20}$")
API_SETTING = {"github": "GITHUB_API_URL", "gitlab": "GITLAB_URL", "gitea": "GITEA_URL", "forgejo": "GITEA_URL"}
DERIVED_API_PATH = {"github": "/api/v3", "gitlab": "", "gitea": "", "forgejo": ""}  # GitHub Enterprise: /api/v3
GITHUB_API_HOST = {"github.com": "api.github.com"}


class Refused(Exception):
    """No status is sent; the message says why and what to do."""


@dataclass(frozen=True)
class Destination:
    url: str
    check_public: bool  # the URL came from a user's repository URL, not from the settings


def repository_host(repo_url: str) -> str:
    """The lowercased host of a repository URL; "" for a path on this machine or a URL with none."""
    try:
        remote = repo_policy.remote(repo_url)
    except repo_policy.Refused:
        return ""
    return "" if remote.scheme == "file" else remote.host


def token_host(app: App) -> str:
    """The host the app's token was stored for; a token stored before hosts were recorded gets the
    repository's host now, recorded, so a later change of the repository URL cannot move it."""
    if app.commit_status_token_host:
        return app.commit_status_token_host
    host = repository_host(app.repo_url)
    if host:
        App.objects.filter(pk=app.pk, commit_status_token_host="").update(commit_status_token_host=host)
        app.commit_status_token_host = host
    return host


def destination(app: App, *, provider: str, repository: str, sha: str) -> Destination:
    """The status endpoint on the token's host, or Refused."""
    host = token_host(app)
    if not host:
        raise Refused("no commit status: the app's repository is a path on this machine, so there is no provider "
                      "host to send the token to")
    now = repository_host(app.repo_url)
    if now != host:
        raise Refused(f"no commit status: the token was stored for {host}, and the repository is now "
                      f"{'at ' + now if now else 'a path on this machine'}; set the token again")
    base, check_public = _api_base(app, provider=provider, host=host)
    return Destination(status_url(provider, repository, sha, base=base), check_public)


def _api_base(app: App, *, provider: str, host: str) -> tuple[str, bool]:
    configured = settings.SWITCHYARD[API_SETTING[provider]]
    if configured and _serves(urlsplit(configured).hostname or "", host):
        return configured.rstrip("/"), False
    if host in GITHUB_API_HOST:
        raise Refused(f"no commit status: SWITCHYARD_{API_SETTING[provider]} ({configured or 'empty'}) is not the "
                      f"API of {host}, where the token was stored")
    remote = repo_policy.remote(app.repo_url)
    scheme = remote.scheme if remote.scheme in ("http", "https") else "https"
    default = repo_policy.DEFAULT_PORTS[scheme]
    port = f":{remote.port}" if scheme == remote.scheme and remote.port not in (0, default) else ""
    address = f"[{host}]" if ":" in host else host
    return f"{scheme}://{address}{port}{DERIVED_API_PATH[provider]}", not app.repo_private_allowed


def _serves(api_host: str, host: str) -> bool:
    api_host = api_host.lower()
    return api_host == host or api_host == GITHUB_API_HOST.get(host)


def status_url(provider: str, repository: str, sha: str, *, base: str) -> str:
    """The provider's commit status endpoint under `base`, made of checked words only (the
    repository's name comes from a verified delivery, but it goes into a URL)."""
    if provider == "gitlab":
        if not GITLAB_PROJECT.fullmatch(repository):
            raise Refused(f"no commit status: {repository!r} is not a GitLab project id")
        return f"{base}/api/v4/projects/{repository}/statuses/{sha}"
    if not REPOSITORY.fullmatch(repository) or ".." in repository:
        raise Refused(f"no commit status: {repository!r} is not a repository's owner/name")
    prefix = "" if provider == "github" else "/api/v1"
    return f"{base}{prefix}/repos/{repository}/statuses/{sha}"


def check_before_sending(app: App, url: str) -> bool:
    """At each send (the repository URL may have changed since the status was recorded): the URL
    is still on the host the token was stored for. Returns check_public for the POST."""
    host = token_host(app)
    if not host or repository_host(app.repo_url) != host or not _serves(urlsplit(url).hostname or "", host):
        raise Refused(f"not sent: {urlsplit(url).hostname or 'this URL'} is not the host the commit status token "
                      f"was stored for ({host or 'none'}); set the token again")
    configured = [settings.SWITCHYARD[name] for name in set(API_SETTING.values())]
    return not any(base and url.startswith(base.rstrip("/") + "/") for base in configured) and \
        not app.repo_private_allowed

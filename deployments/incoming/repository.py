"""Is a delivery about the app's repository? A webhook set on an organisation, a whole Gitea
instance or the wrong repository, or a secret used twice, sends pushes of other repositories
with a valid signature; they must not deploy this app.

The app's repository URL is compared with every URL the payload names the repository by (its
clone, SSH and web URLs), each reduced to host and path: no scheme, user or port, the host and
path lowercased (the providers treat owner/name case-insensitively), no trailing / or .git.
So https://GitHub.com/Octo/Shop.git, git@github.com:octo/shop and ssh://git@github.com:22/octo/shop/
are one repository. A repository on this machine (a path, file://) has no host: no delivery
from a provider matches it. Pure functions."""
import re

SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@(?P<host>[A-Za-z0-9_.-]+):(?P<path>.*)$")


def normalised(url: str) -> str:
    """host/path as described above, or "" for a URL with no host (a path on this machine)."""
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme.lower() == "file":
            return ""
        authority, _, path = rest.partition("/")
        host = _host(authority.rpartition("@")[2])
    else:
        scp = SCP_LIKE.fullmatch(url)
        if scp is None:
            return ""
        host, path = scp["host"], scp["path"]
    path = path.split("?")[0].split("#")[0].strip("/")
    if path.lower().endswith(".git"):
        path = path[:-len(".git")].rstrip("/")
    return f"{host.lower()}/{path.lower()}" if host and path else ""


def _host(host_and_port: str) -> str:
    if host_and_port.startswith("["):  # [v6 address]:port
        return host_and_port.partition("]")[0] + "]"
    return host_and_port.partition(":")[0]


def mismatch(*, app_name: str, repo_url: str, payload_urls: tuple[str, ...] | list[str]) -> str:
    """Why the delivery is not for the app's repository ("" when it is). The reason names the
    delivery's repository, never the app's URL (it may carry a password)."""
    theirs = [normalised(url) for url in payload_urls]
    theirs = [url for url in theirs if url]
    if not theirs:
        return f"the delivery names no repository, so it cannot be matched to {app_name}'s"
    ours = normalised(repo_url)
    if ours and ours in theirs:
        return ""
    return f"the delivery is for {theirs[0]}, which is not the repository {app_name} deploys"

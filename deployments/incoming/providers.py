"""Git hosting webhooks: recognise the provider by its headers, verify the signature, and
read a push out of its payload. Pure functions of headers and body; application/pushes.py records
the delivery and queues the deployment.

Every secret comparison is constant-time (hmac.compare_digest).
"""
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Mapping

from deployments.incoming import payloads

ZERO_SHA = "0" * 40
# Where each payload names its repository (incoming/payloads.py reads them).
GITHUB_URL_FIELDS = (("repository", "clone_url"), ("repository", "ssh_url"), ("repository", "html_url"),
                     ("repository", "git_url"))
GITLAB_URL_FIELDS = (("project", "git_http_url"), ("project", "git_ssh_url"), ("project", "web_url"),
                     ("repository", "git_http_url"), ("repository", "git_ssh_url"), ("repository", "homepage"),
                     ("repository", "url"))
BITBUCKET_URL_FIELDS = (("repository", "links", "html", "href"),)
SERVER_EVENT_PREFIXES = ("repo:refs_changed", "diagnostics:", "pr:", "mirror:")


@dataclass(frozen=True)
class Push:
    """What a delivery asks for. kind: push | ping | tag | other."""
    kind: str
    event: str
    delivery_id: str
    branch: str | None = None
    sha: str | None = None
    pusher: str = ""
    repository: str = ""  # the provider's name for the repository (owner/name; GitLab: the project id)
    repository_urls: tuple[str, ...] = ()  # its clone, SSH and web URLs as the payload gives them


class Rejected(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _branch(ref: str | None) -> tuple[str, str | None]:
    """("push", "main") for refs/heads/main, ("tag", None) for a tag, ("other", None) else."""
    if not ref:
        return "other", None
    if ref.startswith("refs/heads/"):
        return "push", ref[len("refs/heads/"):]
    if ref.startswith("refs/tags/"):
        return "tag", None
    return "other", None


class Provider:
    name = ""

    @classmethod
    def matches(cls, headers: Mapping[str, str]) -> bool:
        raise NotImplementedError

    @classmethod
    def verify(cls, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        raise NotImplementedError

    @classmethod
    def parse(cls, headers: Mapping[str, str], payload: dict) -> Push:
        raise NotImplementedError


class GitHub(Provider):
    name = "github"

    @classmethod
    def matches(cls, headers):
        return "X-GitHub-Event" in headers

    @classmethod
    def verify(cls, headers, body, secret):
        return _same(headers.get("X-Hub-Signature-256", ""), "sha256=" + _hmac_sha256(secret, body))

    @classmethod
    def parse(cls, headers, payload):
        event, delivery = headers["X-GitHub-Event"], headers.get("X-GitHub-Delivery", "")
        if event == "ping":
            return Push("ping", event, delivery)
        if event != "push":
            return Push("other", event, delivery)
        kind, branch = _branch(payload.get("ref"))
        if payload.get("deleted"):
            kind = "other"
        pusher = payloads.first_text(payload, ("pusher", "name"), ("sender", "login"))
        return Push(kind, event, delivery, branch, payload.get("after"), pusher, _repository(payload),
                    payloads.repository_urls(payload, GITHUB_URL_FIELDS))


class GitLab(Provider):
    name = "gitlab"

    @classmethod
    def matches(cls, headers):
        return "X-Gitlab-Event" in headers

    @classmethod
    def verify(cls, headers, body, secret):
        return _same(headers.get("X-Gitlab-Token", ""), secret)

    @classmethod
    def parse(cls, headers, payload):
        event, delivery = headers["X-Gitlab-Event"], headers.get("X-Gitlab-Event-UUID", "")
        if event == "Tag Push Hook":
            return Push("tag", event, delivery)
        if event != "Push Hook":
            return Push("other", event, delivery)
        kind, branch = _branch(payload.get("ref"))
        # Older GitLab payloads have only user_name (the display name) and no project object.
        pusher = payloads.first_text(payload, ("user_username",), ("user_name",))
        return Push(kind, event, delivery, branch, payload.get("checkout_sha") or payload.get("after"),
                    pusher, str(payload.get("project_id") or ""), payloads.repository_urls(payload, GITLAB_URL_FIELDS))


class Gitea(Provider):
    """Gitea sends GitHub's and Gogs' headers beside its own (Forgejo: Gitea's too), so each is
    recognised by, and verified with, its own headers only: X-<Name>-Event, -Delivery, -Signature
    (hex HMAC-SHA256 of the body). The three payloads have one shape (Gitea began as Gogs)."""
    name = "gitea"
    prefix = "X-Gitea"

    @classmethod
    def matches(cls, headers):
        return f"{cls.prefix}-Event" in headers

    @classmethod
    def verify(cls, headers, body, secret):
        return _same(headers.get(f"{cls.prefix}-Signature", ""), _hmac_sha256(secret, body))

    @classmethod
    def parse(cls, headers, payload):
        event, delivery = headers[f"{cls.prefix}-Event"], headers.get(f"{cls.prefix}-Delivery", "")
        if event != "push":
            return Push("other", event, delivery)
        kind, branch = _branch(payload.get("ref"))
        pusher = payloads.first_text(payload, ("pusher", "login"), ("pusher", "username"), ("sender", "login"))
        return Push(kind, event, delivery, branch, payload.get("after"), pusher, _repository(payload),
                    payloads.repository_urls(payload, GITHUB_URL_FIELDS))


class Forgejo(Gitea):
    name = "forgejo"
    prefix = "X-Forgejo"


class Gogs(Gitea):
    name = "gogs"
    prefix = "X-Gogs"


class Bitbucket(Provider):
    """Bitbucket Cloud: one push can carry several changes; the last branch change counts."""
    name = "bitbucket"

    @classmethod
    def matches(cls, headers):
        return "X-Event-Key" in headers

    @classmethod
    def verify(cls, headers, body, secret):
        return _same(headers.get("X-Hub-Signature", ""), "sha256=" + _hmac_sha256(secret, body))

    @classmethod
    def parse(cls, headers, payload):
        event, delivery = headers["X-Event-Key"], headers.get("X-Request-UUID", "")
        if event != "repo:push":
            return Push("other", event, delivery)
        changes = (payload.get("push") or {}).get("changes") or []
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            raise TypeError("push.changes is not a list of changes")
        news = [c.get("new") for c in changes if c.get("new")]
        branches = [n for n in news if n.get("type") == "branch"]
        if not branches:
            return Push("tag" if news else "other", event, delivery)
        new = branches[-1]
        actor = payloads.first_text(payload, ("actor", "nickname"), ("actor", "display_name"))
        return Push("push", event, delivery, new.get("name"), (new.get("target") or {}).get("hash"), actor,
                    _repository(payload), payloads.repository_urls(payload, BITBUCKET_URL_FIELDS))


class BitbucketServer(Bitbucket):
    """Bitbucket Server / Data Center: X-Request-Id (Cloud: X-Request-UUID), a push is
    repo:refs_changed with changes[].ref / refId / toHash; the last branch change counts."""
    name = "bitbucket-server"

    @classmethod
    def matches(cls, headers):
        if "X-Event-Key" not in headers or "X-Request-UUID" in headers or "X-Hook-UUID" in headers:
            return False
        return "X-Request-Id" in headers or headers["X-Event-Key"].startswith(SERVER_EVENT_PREFIXES)

    @classmethod
    def parse(cls, headers, payload):
        event, delivery = headers["X-Event-Key"], headers.get("X-Request-Id", "")
        if event == "diagnostics:ping":
            return Push("ping", event, delivery)
        if event != "repo:refs_changed":
            return Push("other", event, delivery)
        changes = payload.get("changes") or []
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            raise TypeError("changes is not a list of changes")
        refs = [(c.get("refId") or (c.get("ref") or {}).get("id"), c.get("toHash")) for c in changes]
        branches = [(ref, sha) for ref, sha in refs if isinstance(ref, str) and ref.startswith("refs/heads/")]
        if not branches:
            return Push("tag" if refs else "other", event, delivery)
        ref, sha = branches[-1]
        pusher = payloads.first_text(payload, ("actor", "name"), ("actor", "slug"))
        repository = payload.get("repository")
        return Push("push", event, delivery, ref[len("refs/heads/"):], sha, pusher,
                    "", payloads.bitbucket_server_urls(repository if isinstance(repository, dict) else {}))


class Generic(Provider):
    """`Authorization: Bearer <secret>`, body {"ref": "refs/heads/main", "after": "<sha>"}, both optional."""
    name = "generic"

    @classmethod
    def matches(cls, headers):
        return headers.get("Authorization", "").startswith("Bearer ")

    @classmethod
    def verify(cls, headers, body, secret):
        return _same(headers.get("Authorization", "")[len("Bearer "):], secret)

    @classmethod
    def parse(cls, headers, payload):
        delivery = headers.get("Idempotency-Key") or headers.get("X-Delivery-Id", "")
        if "ref" not in payload:
            return Push("push", "push", delivery, None, payload.get("after"))
        kind, branch = _branch(payload.get("ref"))
        return Push(kind, "push", delivery, branch, payload.get("after"))


# The most specific first: Forgejo also sends Gitea's, Gogs' and GitHub's headers, Gitea Gogs' and
# GitHub's; Bitbucket Server's headers are Cloud's minus its UUIDs.
PROVIDERS: tuple[type[Provider], ...] = (Forgejo, Gitea, Gogs, GitHub, GitLab, BitbucketServer, Bitbucket, Generic)
PROVIDER_NAMES = tuple(provider.name for provider in PROVIDERS)


def identify(headers: Mapping[str, str]) -> type[Provider]:
    for provider in PROVIDERS:
        if provider.matches(headers):
            return provider
    raise Rejected(403, "missing signature: no GitHub, GitLab, Gitea, Forgejo, Gogs, Bitbucket or Bearer headers")


def read(provider: type[Provider], headers: Mapping[str, str], body: bytes, secret: str) -> Push:
    """Verify, then parse. Raises Rejected(403) for a bad signature, (400) for a bad body."""
    if not provider.verify(headers, body, secret):
        raise Rejected(403, f"bad signature for {provider.name}: check the secret configured in the webhook")
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "the body is not JSON")
    if not isinstance(payload, dict):
        raise Rejected(400, "the body is not a JSON object")
    try:
        push = provider.parse(headers, payload)
    except (AttributeError, TypeError) as error:
        raise Rejected(400, f"unexpected {provider.name} payload: {error}")
    if push.sha is not None and (not isinstance(push.sha, str) or not _is_sha(push.sha)):
        raise Rejected(400, "`after` is not a commit sha")
    if push.branch is not None and not isinstance(push.branch, str):
        raise Rejected(400, "the ref is not a string")
    return push


def _repository(payload: dict) -> str:
    """owner/name, as GitHub and Gitea send it (checked before it goes into a URL: outgoing/events.py)."""
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else ""


def _is_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)

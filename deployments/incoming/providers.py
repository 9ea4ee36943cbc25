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

ZERO_SHA = "0" * 40


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
        pusher = (payload.get("pusher") or {}).get("name", "")
        return Push(kind, event, delivery, branch, payload.get("after"), pusher, _repository(payload))


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
        return Push(kind, event, delivery, branch, payload.get("checkout_sha") or payload.get("after"),
                    payload.get("user_username", ""), str(payload.get("project_id") or ""))


class Gitea(Provider):
    """Gitea and Forgejo (Forgejo sends both its own and Gitea's headers)."""
    name = "gitea"

    @classmethod
    def matches(cls, headers):
        return "X-Gitea-Event" in headers or "X-Forgejo-Event" in headers

    @classmethod
    def verify(cls, headers, body, secret):
        given = headers.get("X-Gitea-Signature") or headers.get("X-Forgejo-Signature", "")
        return _same(given, _hmac_sha256(secret, body))

    @classmethod
    def parse(cls, headers, payload):
        event = headers.get("X-Gitea-Event") or headers.get("X-Forgejo-Event", "")
        delivery = headers.get("X-Gitea-Delivery") or headers.get("X-Forgejo-Delivery", "")
        if event != "push":
            return Push("other", event, delivery)
        kind, branch = _branch(payload.get("ref"))
        pusher = (payload.get("pusher") or {}).get("login") or (payload.get("pusher") or {}).get("username", "")
        return Push(kind, event, delivery, branch, payload.get("after"), pusher, _repository(payload))


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
        actor = (payload.get("actor") or {}).get("display_name", "")
        return Push("push", event, delivery, new.get("name"), (new.get("target") or {}).get("hash"), actor)


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


PROVIDERS: tuple[type[Provider], ...] = (GitHub, GitLab, Gitea, Bitbucket, Generic)  # GitHub before Bitbucket


def identify(headers: Mapping[str, str]) -> type[Provider]:
    for provider in PROVIDERS:
        if provider.matches(headers):
            return provider
    raise Rejected(403, "missing signature: no GitHub, GitLab, Gitea, Bitbucket or Bearer headers")


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

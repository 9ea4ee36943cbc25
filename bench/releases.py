"""The benchmark's test app and its ten releases, committed to a git repo as a person would.

Every release is busybox httpd in a FROM scratch image serving CGI pages:
/cgi-bin/page (the page the load asks for), /cgi-bin/slow (answers after 2 s) and
/cgi-bin/health. Like most small servers, httpd dies at once on SIGTERM.
"""
from dataclasses import dataclass

from tests.support.apprepo import STAMP_AND_SERVE, AppRepo

BREAKS_AFTER = 8  # seconds after boot for the late-breaking release


@dataclass(frozen=True)
class Release:
    version: str
    # normal | slow_requests | fails_health | breaks_later; the hard cases' apps also know
    # slow (p99 above 1 s) and ignores_sigterm (bench/hard_apps.py)
    kind: str = "normal"

    @property
    def label(self) -> str:
        return {"normal": self.version, "slow_requests": f"{self.version} (2 s requests in flight)",
                "fails_health": f"{self.version} (fails health check)",
                "breaks_later": f"{self.version} (breaks {BREAKS_AFTER} s after start)",
                "slow": f"{self.version} (slow: p99 above 1 s)",
                "ignores_sigterm": f"{self.version} (slow, ignores SIGTERM)"}[self.kind]


INITIAL = Release("v0")
RELEASES = [
    Release("v1"), Release("v2"), Release("v3", "slow_requests"), Release("v4"), Release("v5", "fails_health"),
    Release("v6"), Release("v7", "breaks_later"), Release("v8"), Release("v9"), Release("v10"),
]


def answer(status: str, body: str) -> str:
    """A CGI answer with its length, as real apps give one: without it HAProxy (which does not
    re-chunk an HTTP/1.0 answer) closes the client's connection after each request, and every
    request of the load was a new connection on both sides of the proxy."""
    text = f"{body}\n" if body else ""
    return f"echo 'Status: {status}'; echo 'Content-Length: {len(text.encode())}'; echo; " + (f"echo {body}" if body else "true")


class BenchRepo(AppRepo):
    """Starts with the initial release committed, so an app can be created from it."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.last: Release | None = None
        self.commit_release(INITIAL)

    def commit_release(self, release: Release) -> str:
        if release == self.last:
            return self._git("rev-parse", "HEAD").strip()
        self.last = release
        self.commit_version(release.version, cmd=STAMP_AND_SERVE)
        healthy = answer("200 OK", "ok")
        page = answer("200 OK", release.version)
        if release.kind == "fails_health":
            healthy = answer("500 Broken", "broken")
        if release.kind == "breaks_later":
            broken = f"[ $(( $(date +%s) - $(cat /tmp/started) )) -ge {BREAKS_AFTER} ]"
            healthy = f"if {broken}; then {answer('500 Broken', '')}; else {healthy}; fi"
            page = f"if {broken}; then {answer('500 Broken', 'broken')}; else {page}; fi"
        self._cgi("health", healthy)
        self._cgi("page", page)
        self._cgi("slow", f"sleep 2; {answer('200 OK', release.version)}")
        return self._commit(release.label)

"""A git repository of a tiny web app, made for a test: busybox httpd in a FROM scratch image.

No image can be pulled here, so the static busybox from Debian's busybox-static is
committed into the repo; `httpd` serves www/ (a version page and /health) on port 8000.
Variants commit releases that fail in each way a real release can.
"""
import shutil
import subprocess
import uuid
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
STAMP_AND_SERVE = ('["/bin/busybox", "sh", "-c", "mkdir -p /tmp; date +%s > /tmp/started; '
                   'exec /bin/busybox httpd -f -p 8000 -h /www"]')
# Prints one line at boot (so container output can be seen), then serves www/.
SERVE = '["/bin/busybox", "sh", "-c", "echo serving $(cat /www/index.html); exec /bin/busybox httpd -f -p 8000 -h /www"]'


class AppRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Before the RUN steps of every image of this repository: Docker's build cache never hands
        # a test the layers of another test's (or an interrupted run's) build, whose RUN steps
        # would then not run. The COPY steps before it may come from the cache (same files, same
        # layer): most tests are not about building, and a cached layer saves them a second or so.
        self.nonce = uuid.uuid4().hex
        path.mkdir(parents=True)
        self._git("init", "-q", "-b", "main")
        shutil.copy(BUSYBOX, path / "busybox")

    @property
    def url(self) -> str:
        return str(self.path)

    def commit_version(self, version: str, health: bool = True, extra_dockerfile: str = "", cmd: str = SERVE,
                       cgi_health_status: int = 200) -> str:
        """A release that serves `version` at /, 200 at /health (unless health=False), and
        `cgi_health_status` at /cgi-bin/health."""
        www = self.path / "www"
        shutil.rmtree(www, ignore_errors=True)
        (www / "cgi-bin").mkdir(parents=True)
        (www / "index.html").write_text(version)
        if health:
            (www / "health").write_text("ok")
        self._cgi("health", f"echo 'Status: {cgi_health_status} Health'\necho\necho health")
        self._cgi("page", f"echo 'Status: 200 OK'\necho\necho {version}")
        self._dockerfile(extra_dockerfile, cmd)
        return self._commit(version)

    def _cgi(self, name: str, body: str) -> None:
        script = self.path / "www" / "cgi-bin" / name
        script.write_text(f"#!/bin/busybox sh\n{body}\n")
        script.chmod(0o755)

    def commit_health_fails_after(self, version: str, seconds: int) -> str:
        """Passes verify, then /cgi-bin/health answers 500 from `seconds` after boot on."""
        self.commit_version(version, cmd=STAMP_AND_SERVE)
        self._cgi("health", 'if [ $(( $(date +%s) - $(cat /tmp/started) )) -ge ' + str(seconds) + ' ]; then '
                  "echo 'Status: 500 Broken'; else echo 'Status: 200 OK'; fi\necho\necho health")
        return self._commit(version)

    def commit_counted_health(self, version: str) -> str:
        """/cgi-bin/health adds a line to /www/checks at each call (read with `wc -l`)."""
        self.commit_version(version)
        self._cgi("health", "echo . >> /www/checks; echo 'Status: 200 OK'; echo; echo health")
        return self._commit(f"{version}: counted health")

    def commit_flaky_page(self, version: str) -> str:
        """/cgi-bin/page answers 500 about one time in three; /health stays fine."""
        self.commit_version(version)
        self._cgi("page", "if [ $((RANDOM % 3)) -eq 0 ]; then echo 'Status: 500 Oops'; echo; echo oops; "
                  f"else echo 'Status: 200 OK'; echo; echo {version}; fi")
        return self._commit(version)

    def commit_page_failing(self, version: str, one_in: int) -> str:
        """/cgi-bin/page answers 500 about one time in `one_in`; / and /health stay fine."""
        self.commit_version(version)
        self._cgi("page", f"if [ $((RANDOM % {one_in})) -eq 0 ]; then echo 'Status: 500 Oops'; echo; echo oops; "
                  f"else echo 'Status: 200 OK'; echo; echo {version}; fi")
        return self._commit(version)

    def commit_exits_after(self, version: str, seconds: int) -> str:
        """Serves, then its main process exits with code 7 after `seconds`."""
        return self.commit_version(version, cmd='["/bin/busybox", "sh", "-c", "/bin/busybox httpd -p 8000 -h /www; '
                                                f'sleep {seconds}; exit 7"]')

    def commit_build_error(self) -> str:
        self._dockerfile("COPY does-not-exist /nowhere\n", SERVE)
        return self._commit("broken build")

    def commit_exit_at_boot(self) -> str:
        return self.commit_version("crashes", cmd='["/bin/busybox", "sh", "-c", "echo config missing: DATABASE_URL >&2; exit 3"]')

    def commit_health_404(self) -> str:
        return self.commit_version("no health page", health=False)

    def commit_cgi_health_500(self) -> str:
        """For an app whose health path is /cgi-bin/health."""
        return self.commit_version("health 500", cgi_health_status=500)

    def commit_never_listens(self) -> str:
        return self.commit_version("silent", cmd='["/bin/busybox", "sleep", "3600"]')

    def commit_endless_build(self) -> str:
        """A Dockerfile whose RUN step never ends."""
        return self.commit_version("endless build", extra_dockerfile='RUN ["/bin/busybox", "sleep", "100000"]\n')

    def commit_chatty_build(self, lines: int) -> str:
        """A build whose RUN step prints `lines` lines."""
        return self.commit_version("chatty build", extra_dockerfile=f'RUN ["/bin/busybox", "seq", "{lines}"]\n')

    def commit_fork_bomb(self, depth: int) -> str:
        """/cgi-bin/bomb starts a fork bomb in the background: every process forks two more,
        down to `depth` levels, and the last level sleeps. Bounded (2**(depth+1) processes at
        most) so that a missing pids limit fails the test instead of taking the host down."""
        self.commit_version("bomb")
        self._cgi("bomb", "b() { if [ $1 -gt 0 ]; then b $(($1 - 1)) & b $(($1 - 1)) & wait; "
                  "else /bin/busybox sleep 60; fi; }\n"
                  f"b {depth} </dev/null >/dev/null 2>&1 &\n"
                  # The bomb holds the connection's socket too: the length lets the client finish.
                  "echo 'Status: 200 OK'\necho 'Content-Length: 8'\necho\necho started")
        return self._commit("fork bomb")

    def commit_streams(self, version: str, slow_seconds: int = 4) -> str:
        """/cgi-bin/stream is an endless event stream (`data: VERSION N` every 100 ms) and
        /cgi-bin/slow answers VERSION after `slow_seconds`; both die with httpd on SIGTERM."""
        self.commit_version(version)
        self._cgi("stream", "echo 'Content-Type: text/event-stream'; echo; i=0\n"
                  f"while true; do echo \"data: {version} $i\"; echo; i=$((i + 1)); /bin/busybox sleep 0.1; done")
        self._cgi("slow", f"/bin/busybox sleep {slow_seconds}; echo 'Status: 200 OK'; echo; echo {version}")
        return self._commit(version)

    def commit_memory_hog(self) -> str:
        """/cgi-bin/hog doubles a shell string until the kernel stops it."""
        self.commit_version("hog")
        self._cgi("hog", "s=0123456789abcdef; while true; do s=$s$s; done")
        return self._commit("memory hog")

    def commit_files(self, files: dict[str, str], message: str) -> str:
        """Files written as given (a Dockerfile of a test's own, say), the rest kept; committed."""
        for name, text in files.items():
            (self.path / name).write_text(text)
        return self._commit(message)

    def _dockerfile(self, extra: str, cmd: str) -> None:
        (self.path / "Dockerfile").write_text(
            f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n" + self._uncached(extra) + f"CMD {cmd}\n"
        )

    def _uncached(self, steps: str) -> str:
        """`steps` (Dockerfile lines, RUN steps among them) behind this repository's nonce."""
        return f"LABEL test-repository={self.nonce}\n{steps}" if steps else ""

    def _commit(self, message: str) -> str:
        self._git("add", "-A")
        self._git("-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, check=True, capture_output=True, text=True, timeout=30).stdout

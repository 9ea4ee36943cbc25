"""The apps of the hard cases, committed to git repos as a person would (FROM scratch, no pull).

StreamsRepo: busybox httpd with CGI pages:
  /cgi-bin/page    a short GET (answers the version);
  /cgi-bin/post    a POST whose body is a unique id: the app reports "ID VERSION" to the
                   recorder outside the container (bench/recorder.py) before it answers;
  /cgi-bin/stream  an endless server-sent-event stream, a message every 100 ms;
  /cgi-bin/health  the health check.
  Releases may be slow (one request in 20 takes 1.5 s: p99 above 1 s) or ignore SIGTERM
  (httpd runs under a shell that ignores it, so only Docker's SIGKILL after the stop timeout
  ends it). Otherwise httpd dies at once on SIGTERM, as most small servers do.
WebSocketRepo: Debian's websocketd (a Go binary; the image carries it with the loader and libc
  it links), every connection a stream of "VERSION N" messages, a message every 100 ms;
  /health is a static file.
"""
import shutil
import subprocess
from pathlib import Path

from bench.releases import Release
from tests.support.apprepo import AppRepo

WEBSOCKETD = Path("/usr/bin/websocketd")
MESSAGE_INTERVAL = 0.1  # seconds between two messages of a stream
SLOW_ONE_IN = 20
SLOW_SECONDS = 1.5


class ReleaseRepo(AppRepo):
    """Commits each release once: the app is created from the first, then deployed with it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.last: Release | None = None

    def commit_release(self, release: Release) -> str:
        if release != self.last:
            self.last = release
            self._write(release)
            self._commit(release.label)
        return self._git("rev-parse", "HEAD").strip()

    def _write(self, release: Release) -> None:
        raise NotImplementedError


class StreamsRepo(ReleaseRepo):
    """The recorder's port is the app's RECORDER_PORT; its address is the container's gateway."""

    def _write(self, release: Release) -> None:
        """An ignores_sigterm release is slow too: a request is in flight when it is stopped."""
        version, slow, ignores_sigterm = release.version, release.kind in ("slow", "ignores_sigterm"), \
            release.kind == "ignores_sigterm"
        serve = "exec /bin/busybox httpd -f -p 8000 -h /www"
        if ignores_sigterm:  # sh stays PID 1 and ignores TERM; httpd (its child) never gets it
            serve = "trap '' TERM; /bin/busybox httpd -f -p 8000 -h /www & wait"
        cmd = f'["/bin/busybox", "sh", "-c", "mkdir -p /tmp; echo $RECORDER_PORT > /tmp/recorder; {serve}"]'
        self.commit_version(version, cmd=cmd)
        delay = f"[ $((RANDOM % {SLOW_ONE_IN})) -eq 0 ] && sleep {SLOW_SECONDS}\n" if slow else ""
        self._cgi("page", f"{delay}echo 'Status: 200 OK'; echo; echo {version}")
        self._cgi("post", "id=$(head -c \"$CONTENT_LENGTH\")\n"
                  "gateway=$(ip route | awk '/^default/ {print $3}')\n"
                  f"if wget -q -O /dev/null --post-data \"$id {version}\" \"http://$gateway:$(cat /tmp/recorder)/\"; then\n"
                  f"  echo 'Status: 200 OK'; echo; echo \"{version} $id\"\n"
                  "else echo 'Status: 500 Recorder unreachable'; echo; echo recorder unreachable; fi")
        self._cgi("stream", "echo 'Content-Type: text/event-stream'; echo; i=0\n"
                  f"while true; do echo \"data: {version} $i\"; echo; i=$((i + 1)); usleep 100000; done")
        self._cgi("health", "echo 'Status: 200 OK'; echo; echo ok")


class WebSocketRepo(ReleaseRepo):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        for library in _linked_libraries(WEBSOCKETD):
            target = self.path / "lib" / library.name
            target.parent.mkdir(exist_ok=True)
            shutil.copy(library, target)
        shutil.copy(WEBSOCKETD, self.path / "websocketd")

    def _write(self, release: Release) -> None:
        version = release.version
        www = self.path / "www"
        shutil.rmtree(www, ignore_errors=True)
        www.mkdir()
        (www / "health").write_text("ok")
        (self.path / "stream.sh").write_text(f"i=0; while true; do echo \"{version} $i\"; i=$((i + 1)); usleep 100000; done\n")
        copies = "".join(f"COPY lib/{library.name} {library}\n" for library in _linked_libraries(WEBSOCKETD))
        (self.path / "Dockerfile").write_text(
            f"FROM scratch\nLABEL test-repository={self.nonce}\nCOPY busybox /bin/busybox\n{copies}"
            "COPY websocketd /websocketd\nCOPY www /www\nCOPY stream.sh /stream.sh\n"
            'CMD ["/websocketd", "--port=8000", "--staticdir=/www", "--loglevel=error", '
            '"/bin/busybox", "sh", "/stream.sh"]\n')


def _linked_libraries(binary: Path) -> list[Path]:
    """The loader and shared libraries `ldd` lists for a binary (none for a static one)."""
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=10).stdout
    paths = []
    for line in output.splitlines():
        words = [w for w in line.split() if w.startswith("/")]
        if words:
            paths.append(Path(words[0]))
    return paths

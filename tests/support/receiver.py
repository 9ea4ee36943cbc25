"""A local HTTP server that records every request it gets: the stand-in for webhook receivers,
Slack and the git providers' APIs, none of which can be reached from here. It can also serve a
git repository over git's "dumb" HTTP protocol (static files), as a git host would serve it."""
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    def json(self):
        return json.loads(self.body)


class Receiver:
    """`with Receiver(fail_first=2) as receiver:` answers 500 to the first two requests, then 204."""

    def __init__(self, port: int = 0, fail_first: int = 0, git: tuple[str, Path] | None = None) -> None:
        """git: (URL path prefix, a repository's .git directory) served to GETs, after
        `git update-server-info` (the caller runs it after each commit)."""
        self.requests: list[Received] = []
        self._fail_first = fail_first
        self._git = git
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    owner.requests.append(Received("POST", self.path, dict(self.headers), body, time.monotonic()))
                    failing = len(owner.requests) <= owner._fail_first
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                found = owner._git_file(self.path)
                self.send_response(200 if found else 404)
                self.send_header("Content-Length", str(len(found or b"")))
                self.end_headers()
                self.wfile.write(found or b"")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _git_file(self, path: str) -> bytes | None:
        if self._git is None or not path.startswith(self._git[0] + "/"):
            return None
        root = self._git[1].resolve()
        wanted = (root / path[len(self._git[0]) + 1:].split("?")[0]).resolve()
        return wanted.read_bytes() if wanted.is_relative_to(root) and wanted.is_file() else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

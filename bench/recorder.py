"""The recorder: an HTTP server outside every container, to which the app reports each POST id
it received ("ID VERSION"). It counts how often each id reached an app, whatever the client
saw: a retried request shows up here twice, a lost one not at all."""
import threading
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Recorder:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, body: str) -> None:
        identifier = body.split(" ", 1)[0]
        with self._lock:
            self.seen[identifier] += 1


@contextmanager
def serve(bind: str = "0.0.0.0") -> Iterator[tuple[Recorder, int]]:
    """On every address, so each app's containers reach it at their network's gateway."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            recorder.record(self.rfile.read(length).decode(errors="replace"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((bind, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()

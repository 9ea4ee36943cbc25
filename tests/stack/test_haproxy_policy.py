"""The rendered HAProxy config, run by a real HAProxy: retries that never replay a POST."""
import http.client
import http.server
import socket
import threading

import pytest

from deployments.haproxy import process as haproxy_process
from deployments.haproxy.config import Binds, Paths, render_config, render_map
from deployments.haproxy.files import write_referenced_files
from deployments.traffic.table import AppRoute, Backend, HealthCheck, Server


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers /health; other requests are recorded, then answered or dropped unanswered."""
    drop = False

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._handle()

    def _handle(self) -> None:
        if self.path == "/health":
            return self._answer(b"ok")
        self.server.seen.append((self.command, self.path))
        if self.drop:
            self.close_connection = True  # the connection closes with no response at all
            return
        self._answer(b"served")

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except ConnectionResetError:  # HAProxy resets a health check's connection once it has the status
            pass

    def log_message(self, *args) -> None:
        pass


class _Dropper(_Recorder):
    drop = True


def _serve(handler) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def proxy(tmp_path):
    dropper, healthy = _serve(_Dropper), _serve(_Recorder)
    health = HealthCheck("/health", 200, "shop.localhost", 1.0)
    servers = (Server("127.0.0.1", dropper.server_port), Server("127.0.0.1", healthy.server_port))
    route = AppRoute("shop", ("shop.localhost",), "blue", {"blue": Backend(health, servers), "green": Backend(health)})
    paths, port = Paths(tmp_path), _free_port()
    write_referenced_files(paths, [route])
    paths.config.write_text(render_config([route], paths, Binds(("127.0.0.1", port), ("127.0.0.1", _free_port()))))
    paths.hosts_map.write_text(render_map([route]))
    haproxy_process.check_config(paths.config)
    haproxy_process.start(paths)
    yield port, dropper, healthy
    haproxy_process.stop(paths)
    dropper.shutdown(), healthy.shutdown()


def _request(port: int, method: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=b"x" if method == "POST" else None, headers={"Host": "shop.localhost"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_get_that_meets_a_dropped_connection_is_retried_on_another_server(proxy):
    port, dropper, healthy = proxy
    statuses = [_request(port, "GET", f"/get/{i}") for i in range(10)]

    assert statuses == [200] * 10
    assert dropper.seen, "the dropping server should have been tried"
    assert {path for _, path in dropper.seen} <= {path for _, path in healthy.seen}


def test_post_that_reached_a_server_is_never_replayed(proxy):
    port, dropper, healthy = proxy
    statuses = {f"/post/{i}": _request(port, "POST", f"/post/{i}") for i in range(10)}

    dropped = {path for _, path in dropper.seen}
    assert dropped, "the dropping server should have received some POSTs"
    assert not dropped & {path for _, path in healthy.seen}
    assert all(statuses[path] == 502 for path in dropped)
    assert all(status == 200 for path, status in statuses.items() if path not in dropped)

"""A fake image registry on 127.0.0.1, speaking just enough of the registry v2 API for dockerd to
pull from it (dockerd treats 127.0.0.0/8 as an insecure registry by default: plain HTTP).

Each image has one config blob and its layers; a layer is either real (a gzipped tar, served
whole) or declared (a size in the manifest, then bytes trickled until dockerd hangs up), which
plays a registry that sends slowly or without end."""
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
TRICKLE = 16 * 1024  # bytes every 50 ms: 320 KiB/s


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    port: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)
    trickled: dict[str, int] = field(default_factory=dict)  # digest -> declared size
    manifests: dict[str, bytes] = field(default_factory=dict)  # "name:tag" -> manifest
    hung_up: threading.Event = field(default_factory=threading.Event)  # dockerd closed a trickled layer

    def add_image(self, name: str, files: dict[str, bytes] | None = None, declared_layers: tuple[int, ...] = ()) -> str:
        """An image of one real layer with `files`, or of layers that only declare a size; its reference."""
        layers, diff_ids = [], []
        if files is not None:
            tar = _tar(files)
            layer = gzip.compress(tar)
            self.blobs[_digest(layer)] = layer
            layers.append({"mediaType": LAYER_TYPE, "size": len(layer), "digest": _digest(layer)})
            diff_ids.append(_digest(tar))
        for index, size in enumerate(declared_layers):
            digest = _digest(f"{name}-{index}".encode())  # never checked: the layer never ends
            self.trickled[digest] = size
            layers.append({"mediaType": LAYER_TYPE, "size": size, "digest": digest})
            diff_ids.append(digest)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/x"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        self.blobs[_digest(config)] = config
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "size": len(config), "digest": _digest(config)},
                    "layers": layers}
        self.manifests[f"{name}:latest"] = json.dumps(manifest).encode()
        return f"127.0.0.1:{self.port}/{name}:latest"


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    """Answers from `registry`, which `_handler` sets on a subclass made for each server."""
    protocol_version = "HTTP/1.1"
    registry: Registry

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?")[0]
        if path == "/v2/":
            return self._send(200, b"{}", "application/json", body)
        name, _, rest = path[len("/v2/"):].rpartition("/")
        kind = name.rpartition("/")[2]
        name = name.rpartition("/")[0]
        if kind == "manifests" and f"{name}:{rest}" in self.registry.manifests:
            manifest = self.registry.manifests[f"{name}:{rest}"]
            return self._send(200, manifest, MANIFEST_TYPE, body, {"Docker-Content-Digest": _digest(manifest)})
        if kind == "blobs" and rest in self.registry.blobs:
            return self._send(200, self.registry.blobs[rest], "application/octet-stream", body)
        if kind == "blobs" and rest in self.registry.trickled:
            return self._trickle(self.registry.trickled[rest])
        self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}', "application/json", body)

    def _send(self, status: int, data: bytes, content_type: str, body: bool, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": content_type, "Content-Length": str(len(data)),
                           "Docker-Distribution-API-Version": "registry/2.0", **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _trickle(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            for _ in range(size // TRICKLE):  # dockerd reports progress every 512 KiB: ~1.6 s
                self.wfile.write(b"\0" * TRICKLE)
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            self.registry.hung_up.set()
        self.close_connection = True


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"registry": registry})


@contextmanager
def fake_registry() -> Iterator[Registry]:
    registry = Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    server.daemon_threads = True
    registry.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()

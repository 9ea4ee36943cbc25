"""A real image registry for a test: Debian's `docker-registry` (the CNCF distribution registry)
on 127.0.0.1 with a free port and its own storage directory, optionally behind htpasswd auth;
images are built here (FROM scratch with Debian's static busybox) and pushed to it with the
docker SDK. dockerd speaks plain HTTP to a 127.0.0.0/8 registry by default.

`stop()` stops the registry and removes every image the test pushed or pulled from it."""
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from deployments.dockerd import build_lock, daemon, image_removal

REGISTRY = Path("/usr/bin/docker-registry")
BUSYBOX = Path("/bin/busybox")


class LocalRegistry:
    """On the port the test settings list and trust (TEST_REGISTRY): the workers pull from it as
    from a registry the administrator named in SWITCHYARD_PRIVATE_REGISTRIES."""

    def __init__(self, root: Path, *, username: str = "", password: str = "") -> None:
        self.root, self.port = root, int(os.environ["SWITCHYARD_TEST_REGISTRY_PORT"])
        self.username, self.password = username, password
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "LocalRegistry":
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.username:
            line = subprocess.run(["htpasswd", "-Bbn", self.username, self.password], check=True,
                                  capture_output=True, text=True).stdout.strip()
            (self.root / "htpasswd").write_text(line + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: sy-test\n    path: {self.root / 'htpasswd'}\n"
        (self.root / "config.yml").write_text(
            f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n{auth}")
        self.process = subprocess.Popen([str(REGISTRY), "serve", str(self.root / "config.yml")],
                                        stdout=open(self.root / "registry.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"docker-registry did not start: {(self.root / 'registry.log').read_text()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
            return True
        except urllib.error.HTTPError:
            return True  # 401: up, behind auth
        except OSError:
            return False

    def push_image(self, name: str, files: dict[str, str], cmd: str) -> str:
        """An image FROM scratch with busybox and `files` (path → text, executable), pushed as
        127.0.0.1:PORT/NAME; the local tag is removed, so that a deploy pulls it. Returns its digest.
        Its label makes the image its own: without one, another test process pushing the same
        files builds the very same image (a cache hit at every step), and removing the tag here
        while that build ran took the image it had just picked (`unable to find image`)."""
        reference = f"{self.host}/{name}"
        with tempfile.TemporaryDirectory(prefix="sy-registry-image-") as context:
            context = Path(context)
            shutil.copy(BUSYBOX, context / "busybox")
            for path, text in files.items():
                (context / "files" / path).parent.mkdir(parents=True, exist_ok=True)
                (context / "files" / path).write_text(text)
                (context / "files" / path).chmod(0o755)
            (context / "Dockerfile").write_text(f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY files /\nCMD {cmd}\n")
            with build_lock.building():  # its first layer is every busybox build's (build_lock.py)
                daemon.client().images.build(path=str(context), tag=reference, rm=True, forcerm=True,
                                             labels={"switchyard-test.image": uuid.uuid4().hex})
        repository, tag = reference.rsplit(":", 1)
        auth = {"username": self.username, "password": self.password} if self.username else None
        for line in daemon.client().api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in line:
                raise RuntimeError(f"push of {reference} failed: {line['error']}")
        digest = next(d for d in daemon.client().api.inspect_image(reference)["RepoDigests"]
                      if d.startswith(repository + "@")).split("@")[1]
        image_removal.remove_images([reference])  # a deploy pulls it
        return digest

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        for image in daemon.client().api.images():  # not images.list(): it inspects each, and fails on one
            names = list(image.get("RepoTags") or []) + list(image.get("RepoDigests") or [])  # removed meanwhile
            if any(name.startswith(self.host + "/") for name in names):
                image_removal.remove_images([image["Id"]], force=True)  # one a container still uses: its cleanup's
        shutil.rmtree(self.root, ignore_errors=True)

"""A build context made in memory: a Dockerfile, Debian's static busybox and files of a test's own."""
import io
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")


def busybox_context(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    """The tar docker build reads: `Dockerfile`, `busybox` and `files`, each executable."""
    contents = {"Dockerfile": dockerfile.encode(), "busybox": BUSYBOX.read_bytes(), **files}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer

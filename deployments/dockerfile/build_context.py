"""The Dockerfile in a build context (a tar of the commit): read the tenant's out of it, and put
the checked, canonical one in under a name of ours, so that dockerd builds exactly what was checked."""
import io
import posixpath
import secrets
import tarfile
from typing import BinaryIO

from deployments.dockerfile.syntax import Refused

MAX_DOCKERFILE_BYTES = 1024 * 1024
CHECKED_DOCKERFILE_PREFIX = ".switchyard-checked-dockerfile-"


def dockerfile_from_context(context_tar: bytes | BinaryIO, dockerfile: str) -> str:
    """The Dockerfile as dockerd would read it from the build context (links followed inside it);
    the context as bytes or as a seekable tar file."""
    name = posixpath.normpath(dockerfile or "Dockerfile").lstrip("/")
    if name.startswith(".."):
        raise Refused(f"the Dockerfile {dockerfile!r} is outside the build context")
    try:
        fileobj = io.BytesIO(context_tar) if isinstance(context_tar, bytes) else context_tar
        with tarfile.open(fileobj=fileobj) as archive:
            member = archive.getmember(name)
            if member.size > MAX_DOCKERFILE_BYTES:
                raise Refused(f"{dockerfile} is larger than {MAX_DOCKERFILE_BYTES // 1024} KiB")
            handle = archive.extractfile(member)
            data = handle.read(MAX_DOCKERFILE_BYTES + 1) if handle else b""
    except (KeyError, tarfile.TarError) as error:
        raise Refused(f"there is no Dockerfile {dockerfile!r} in the build context ({error})") from None
    if len(data) > MAX_DOCKERFILE_BYTES:
        raise Refused(f"{dockerfile} is larger than {MAX_DOCKERFILE_BYTES // 1024} KiB")
    return data.decode("utf-8", errors="replace")


def add_checked_dockerfile(context_tar: BinaryIO, text: str) -> str:
    """Append `text` to the context (a seekable tar file) under a fresh name; returns that name.
    The name is random, so no file of the repository is at it; were one there, the later member
    wins as dockerd unpacks the tar."""
    name = f"{CHECKED_DOCKERFILE_PREFIX}{secrets.token_hex(8)}"
    data = text.encode()
    context_tar.seek(0)
    with tarfile.open(fileobj=context_tar, mode="a") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    context_tar.seek(0)
    return name


def with_labels(dockerfile: str, target: str, labels: dict[str, str]) -> str:
    """The checked Dockerfile with one LABEL instruction ending the stage that is built (`target`,
    canonical as `stage-N`, or the last one). dockerd makes each label given through its API a
    build step of its own, and each step not in the cache creates and commits a container: one
    instruction makes all of them one step. The stage's own LABELs come before it: ours win."""
    lines = dockerfile.rstrip("\n").split("\n")  # canonical: one instruction per line
    label = "LABEL " + " ".join(f"{key}={_quoted(value)}" for key, value in sorted(labels.items()))
    end = len(lines)
    if target:
        start = next(i for i, line in enumerate(lines) if line.startswith("FROM ") and line.endswith(f" AS {target}"))
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("FROM ")), len(lines))
    return "\n".join([*lines[:end], label, *lines[end:]]) + "\n"


def _quoted(value: str) -> str:
    """A LABEL value in double quotes, read back exactly: backslash, quote and `$` (which a LABEL
    would expand) escaped."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"a label value on two lines: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'

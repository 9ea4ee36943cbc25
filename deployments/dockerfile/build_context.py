"""The Dockerfile in a build context (a tar of the commit): read the tenant's out of it, and make
the context dockerd is sent (for_build): the tenant's .dockerignore applied, and the checked,
canonical Dockerfile in under a name of ours, so that dockerd builds exactly what was checked."""
import io
import posixpath
import tarfile
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from deployments.dockerfile.syntax import Refused

MAX_DOCKERFILE_BYTES = 1024 * 1024
# One name for every build: it is in the .dockerignore dockerd sees (copied by a `COPY . .` unless
# the tenant's lists itself), and a name that changed from one build to the next (it was random)
# made every step after such a COPY miss the build cache. A repository file at it is left out.
CHECKED_DOCKERFILE = ".switchyard-checked-dockerfile"
DOCKERIGNORE = ".dockerignore"


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


Excluder = Callable[[str | None], Callable[[str], bool] | None]  # dockerd/dockerignore.py excluder


@contextmanager
def for_build(archive: BinaryIO, checked_dockerfile: str, excluder: Excluder) -> Iterator[tuple[BinaryIO, str]]:
    """The context dockerd is sent, in a temporary file, and the name of the Dockerfile in it.

    - What the tenant's `.dockerignore` excludes (`excluder` reads its patterns) is left out, as
      `docker build` leaves it out: dockerd applies none of those patterns to a context sent
      through its API (the docker CLI filters before it sends), so a `COPY . .` copied what the
      tenant had excluded.
    - The checked Dockerfile goes in as CHECKED_DOCKERFILE, and a `.dockerignore` that lists it
      (and itself, if the tenant had none): dockerd takes what it lists out of the context once it
      has read the Dockerfile, so a `COPY . .` never copies it."""
    name = CHECKED_DOCKERFILE
    archive.seek(0)
    with tempfile.TemporaryFile(prefix="switchyard-context-") as output:
        with tarfile.open(fileobj=archive) as source, tarfile.open(fileobj=output, mode="w") as context:
            ignored = _member_text(source, DOCKERIGNORE)
            _copy_kept(source, context, excluder(ignored), leave_out={name, DOCKERIGNORE})
            _add(context, name, checked_dockerfile)
            listed = [name] if ignored is not None else [name, DOCKERIGNORE]
            _add(context, DOCKERIGNORE, (ignored or "").rstrip("\n") + "\n" + "\n".join(listed) + "\n")
        output.seek(0)
        yield output, name


def _member_text(archive: tarfile.TarFile, name: str) -> str | None:
    try:
        handle = archive.extractfile(archive.getmember(name))
    except KeyError:
        return None
    return handle.read(MAX_DOCKERFILE_BYTES).decode("utf-8", errors="replace") if handle else None


def _copy_kept(source: tarfile.TarFile, context: tarfile.TarFile, excluded: Callable[[str], bool] | None,
               leave_out: set[str]) -> None:
    for member in source:
        path = posixpath.normpath(member.name).lstrip("/")
        if path in leave_out or (excluded is not None and path != "." and excluded(path)):
            continue
        context.addfile(member, source.extractfile(member) if member.isfile() else None)


def _add(context: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    context.addfile(info, io.BytesIO(data))


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

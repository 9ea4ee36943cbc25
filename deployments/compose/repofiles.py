"""The repository's own files that a compose file names (bind mounts, secrets and configs with
`file:`, env_file, extends and include), read through the `read_file` the caller gives: the
repository at the release's commit (engine/phases/fetch.py) or at the branch's tip (the panel's
check). A path is resolved relative to the compose file's directory and must stay inside the
repository: a user's value never becomes a path on the host.

`read_file(path)` returns a file's bytes; it raises FileNotFoundError for a path the repository
does not have, LookupError (with the reason: too large, a symlink that leaves the repository) for
what cannot be read, and IsADirectoryError whose first argument identifies the directory's content
(its git tree) for a directory. Each message is the reason, to be shown as it is."""
import hashlib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

ReadFile = Callable[[str], bytes]

MAX_FILES_BYTES = 16 * 1024 * 1024  # everything one compose file reads from the repository, in all
DOCKER_SOCKET = ("the Docker socket would give the app control of every container on the host, "
                 "other apps' included")
HOST_PATH = ("only files of the repository are mounted, never a path on the host (it would reach outside "
             "the app's confinement): name a file or directory of the repository relative to the compose file, "
             "such as ./conf/nginx.conf")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class PathRefused(ValueError):
    """A path that does not name something inside the repository; the message says why."""


class Missing(PathRefused):
    """The repository has no such file (an env_file with required: false may be missing)."""


def repo_path(base_dir: str, value: str) -> str:
    """`value` (relative to the compose file's directory `base_dir`) as a normalised path from the
    repository's root ("." for the root itself); raises PathRefused."""
    if "docker.sock" in value:
        raise PathRefused(DOCKER_SOCKET)
    if not value.strip() or "\0" in value or "\n" in value:
        raise PathRefused("not a path")
    if value.startswith("~"):
        raise PathRefused(f"a home directory: {HOST_PATH}")
    if value.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(value):
        raise PathRefused(f"an absolute path: {HOST_PATH}")
    path = posixpath.normpath(posixpath.join(base_dir or ".", value))
    if path == ".." or path.startswith("../"):
        raise PathRefused(f"it leaves the repository: {HOST_PATH}")
    return path


@dataclass(frozen=True)
class Entry:
    """A file's content, or a directory (content None) identified by its git tree."""
    path: str
    content: bytes | None
    digest: str

    @property
    def directory(self) -> bool:
        return self.content is None


@dataclass
class RepoFiles:
    """One load's reads: each path read once, MAX_FILES_BYTES in all. Without `read_file` (a
    reader of the stored compose text that has no repository at hand), a file is taken as empty,
    so everything else can still be checked; the deployment reads them."""
    read_file: ReadFile | None
    read_bytes: int = 0
    _cache: dict[str, Entry] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.read_file is not None

    def entry(self, path: str) -> Entry:
        """The file or directory at `path` (from repo_path); raises PathRefused with the reason."""
        if path in self._cache:
            return self._cache[path]
        if self.read_file is None:
            return Entry(path=path, content=b"", digest="")
        try:
            content = self.read_file(path)
        except IsADirectoryError as directory:
            found = Entry(path=path, content=None, digest=str(directory.args[0] if directory.args else path))
        except FileNotFoundError as error:
            raise Missing(_reason(error, f"there is no {path!r} in the repository")) from None
        except LookupError as error:
            raise PathRefused(_reason(error, f"{path!r} cannot be read")) from None
        else:
            self.read_bytes += len(content)
            if self.read_bytes > MAX_FILES_BYTES:
                raise PathRefused(f"the files the compose file names are more than {MAX_FILES_BYTES // 2**20} MiB "
                                  "in all")
            found = Entry(path=path, content=content, digest=hashlib.sha256(content).hexdigest())
        self._cache[path] = found
        return found

    def file(self, path: str) -> bytes:
        """A file's content; a directory is refused."""
        found = self.entry(path)
        if found.directory:
            raise PathRefused(f"{path!r} is a directory, not a file")
        return found.content

    def text(self, path: str) -> str:
        try:
            return self.file(path).decode()
        except UnicodeDecodeError:
            raise PathRefused(f"{path!r} is not UTF-8 text") from None


def _reason(error: Exception, default: str) -> str:
    return str(error.args[0]) if error.args else default

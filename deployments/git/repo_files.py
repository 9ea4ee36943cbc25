"""One commit's files, read one at a time for what a compose file names (bind-mounted files,
env_file, secrets, configs): in the app's cache at the release's commit (the worker), or at the
branch's tip in a throwaway repository (the panel's check, within read_remote_file's bounds).

A path is resolved as git stores it (`git cat-file --follow-symlinks`): a symlink to another
path of the repository is followed; one that leaves the repository, dangles or loops is refused,
never followed on this machine. A directory is named by its tree, whose files go into a
release's files volume as a whole (archive_tree)."""
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from deployments.git import source
from deployments.git.source import _git as run_git  # the one way this package runs git

MAX_FILE_BYTES = 4 * 1024 * 1024  # one file a compose file names (a config, an init script, a secret)


@dataclass(frozen=True)
class CommitFiles:
    repo: Path
    commit: str
    git: Callable[..., subprocess.CompletedProcess] = run_git
    max_bytes: int = MAX_FILE_BYTES

    @property
    def shown(self) -> str:
        return f"commit {self.commit[:12]}" if source.SHA.match(self.commit) else "the branch's tip"

    def read_file(self, path: str) -> bytes:
        """compose/repofiles.py's ReadFile: the file's bytes; FileNotFoundError, LookupError
        (too large, a symlink leaving the repository), IsADirectoryError(tree) as it says."""
        kind, oid, size = self._entry(path)
        if kind == "tree":
            raise IsADirectoryError(oid)
        if kind != "blob":
            raise LookupError(f"{path!r} is a {kind} in {self.shown}, not a file")
        if size > self.max_bytes:
            raise LookupError(f"{path!r} is larger than {self.max_bytes // 1024} KiB")
        result = self.git(["cat-file", "blob", oid], cwd=self.repo)
        source._checked(result, f"read {path!r} of {self.shown}")
        return result.stdout

    def _entry(self, path: str) -> tuple[str, str, int]:
        result = self.git(["cat-file", "--batch-check", "--follow-symlinks"], cwd=self.repo,
                          stdin=f"{self.commit}:{'' if path == '.' else path}\n".encode())
        source._checked(result, f"look up {path!r} in {self.shown}")
        first, _, rest = result.stdout.decode(errors="replace").partition("\n")
        words = first.split()
        if len(words) == 3 and words[2].isdigit() and words[0] not in ("symlink", "dangling", "loop", "notdir"):
            return words[1], words[0], int(words[2])
        if words[:1] == ["symlink"]:
            raise LookupError(f"{path!r} is a symlink to {rest.strip()[:200]!r}, outside the repository: "
                              "only files of the repository are read")
        if words[:1] == ["loop"]:
            raise LookupError(f"{path!r}: its symlinks form a loop")
        raise FileNotFoundError(f"there is no {path!r} in {self.shown}"
                                + (" (a symlink to a path that does not exist)" if words[:1] == ["dangling"] else ""))

    def mode(self, path: str) -> int:
        """0o755 for an executable file of the repository, else 0o644 (a symlink's target too)."""
        result = self.git(["ls-tree", "-z", self.commit, "--", path], cwd=self.repo)
        return 0o755 if result.returncode == 0 and result.stdout.startswith(b"100755 ") else 0o644

    def archive_tree(self, tree: str, prefix: str, output: BinaryIO) -> None:
        """The files of a directory (its tree's id) as a tar, each under `prefix/`, written to
        `output`; refused above SWITCHYARD_MAX_SOURCE_MB."""
        limit = settings.SWITCHYARD["MAX_SOURCE_MB"]
        result = run_git(["archive", "--format=tar", f"--prefix={prefix}/", tree], cwd=self.repo, stdout=output,
                         max_output=limit * 1024 * 1024)
        if source._too_large(result):
            raise source.SourceError(f"a directory the compose file mounts is larger than {limit} MiB "
                                     "(SWITCHYARD_MAX_SOURCE_MB)")
        source._checked(result, f"archive a directory of {self.shown}")


def at_commit(app_name: str, sha: str) -> CommitFiles:
    """The release's files, in the app's cache (fetched by the fetch phase)."""
    return CommitFiles(repo=source.cache_dir(app_name), commit=sha)


@contextmanager
def at_branch_tip(repo_url: str, branch: str, path: str, access: source.Access) -> Iterator[CommitFiles]:
    """The files at a remote branch's tip, read while a person waits (source.remote_tip's bounds:
    one deadline and one size cap for every git call)."""
    with source.remote_tip(repo_url, branch, path, access) as (repo, git):
        yield CommitFiles(repo=repo, commit="FETCH_HEAD", git=git)


class BranchTip:
    """A ReadFile of a remote branch's tip that fetches it on the first read only: a compose file
    that names no file of the repository costs no second fetch. Closed with `cleanup`."""

    def __init__(self, repo_url: str, branch: str, access: source.Access, cleanup: ExitStack) -> None:
        self.repo_url, self.branch, self.access, self.cleanup = repo_url, branch, access, cleanup
        self.files: CommitFiles | None = None

    def read_file(self, path: str) -> bytes:
        if self.files is None:
            self.files = self.cleanup.enter_context(at_branch_tip(self.repo_url, self.branch, path, self.access))
        return self.files.read_file(path)

"""Git: check a remote, fetch into a per-app bare cache, resolve a ref, archive a commit.

Always the git CLI with argument lists, a timeout, and no way to prompt for credentials
(a prompt in a worker would hang the deployment forever).
"""
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from deployments.engine import priority

SHA = re.compile(r"^[0-9a-f]{7,40}$")


class SourceError(Exception):
    """Git could not reach the repository or find the ref; the message says which."""


def _git(args: list[str], cwd: Path | None = None, timeout: float | None = None,
         stdout: BinaryIO | None = None, max_output: int = 0) -> subprocess.CompletedProcess:
    """git with its output captured, or written to `stdout` (a file) up to `max_output` bytes: past
    that the kernel stops it (RLIMIT_FSIZE, SIGXFSZ), so a huge commit cannot fill the disk."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "SSH_ASKPASS": "/bin/true",
           "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"}

    def in_child() -> None:
        priority.in_child()  # git works on the tenant's repository: not at the deployment's raised priority
        if max_output:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_output, max_output))

    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=env, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=in_child, timeout=timeout or settings.SWITCHYARD["GIT_TIMEOUT"],
        )
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} did not finish within {timeout or settings.SWITCHYARD['GIT_TIMEOUT']}s")


def _stderr(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def remote_branches(repo_url: str) -> list[str]:
    """Branch names of a remote; raises SourceError if it cannot be read."""
    result = _git(["ls-remote", "--heads", "--", repo_url], timeout=30)
    if result.returncode != 0:
        raise SourceError(f"cannot read git repository {repo_url!r}: {_stderr(result)}")
    return [line.split("refs/heads/", 1)[1] for line in result.stdout.decode().splitlines() if "refs/heads/" in line]


def cache_dir(app_name: str) -> Path:
    return Path(settings.SWITCHYARD["REPO_CACHE_DIR"]) / f"{app_name}.git"


def fetch(app_name: str, repo_url: str, ref: str) -> str:
    """Fetch all branches and tags into the app's cache; return the commit sha `ref` names."""
    repo = cache_dir(app_name)
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _checked(_git(["init", "--bare", "--quiet", str(repo)]), "create the repository cache")
    result = _git(["fetch", "--force", "--prune", "--no-tags", "--", repo_url,
                   "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], cwd=repo)
    if result.returncode != 0:
        raise SourceError(f"git fetch from {repo_url!r} failed: {_stderr(result)}")
    return resolve(repo, ref)


def resolve(repo: Path, ref: str) -> str:
    candidates = [f"refs/remotes/origin/{ref}", f"refs/tags/{ref}"]
    if SHA.match(ref):
        candidates.append(ref)
    for candidate in candidates:
        result = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"], cwd=repo)
        if result.returncode == 0:
            return result.stdout.decode().strip()
    raise SourceError(f"{ref!r} is not a branch, tag or commit of the repository")


def archive(app_name: str, sha: str, directory: str = ".") -> BinaryIO:
    """A tar of exactly that commit's tree, or of one directory of it: the build context, in a
    temporary file (gone once closed) that the build streams from. Never read whole into memory;
    refused above SWITCHYARD_MAX_SOURCE_MB."""
    tree = sha if directory in ("", ".") else f"{sha}:{directory}"
    limit = settings.SWITCHYARD["MAX_SOURCE_MB"] * 1024 * 1024
    output = tempfile.TemporaryFile(prefix="switchyard-source-")
    try:
        result = _git(["archive", "--format=tar", tree], cwd=cache_dir(app_name), stdout=output, max_output=limit)
        if result.returncode == -signal.SIGXFSZ:
            raise SourceError(f"the source of commit {sha[:12]} ({directory!r}) is larger than "
                              f"{settings.SWITCHYARD['MAX_SOURCE_MB']} MiB (SWITCHYARD_MAX_SOURCE_MB)")
        _checked(result, f"archive {directory!r} of commit {sha[:12]}")
    except BaseException:
        output.close()
        raise
    output.seek(0)
    return output


def read_file(app_name: str, sha: str, path: str, max_bytes: int) -> str:
    """One file of that commit (a compose file), as text; refused above max_bytes (before reading it)."""
    return _read(cache_dir(app_name), sha, path, max_bytes)


def _read(repo: Path, commit: str, path: str, max_bytes: int) -> str:
    shown = commit[:12] if SHA.match(commit) else "the branch's tip"
    size = _git(["cat-file", "-s", f"{commit}:{path}"], cwd=repo)
    if size.returncode != 0:
        raise SourceError(f"there is no file {path!r} in commit {shown}")
    if int(size.stdout) > max_bytes:
        raise SourceError(f"{path} is larger than {max_bytes // 1024} KiB")
    result = _git(["show", f"{commit}:{path}"], cwd=repo)
    _checked(result, f"read {path!r} of commit {shown}")
    return result.stdout.decode(errors="replace")


def read_remote_file(repo_url: str, branch: str, path: str, max_bytes: int) -> str:
    """One file at the tip of a remote branch (a compose file checked when an app is created),
    fetched shallow into a throwaway repository: the app's cache is the worker's."""
    with tempfile.TemporaryDirectory(prefix="switchyard-peek-") as repo:
        _checked(_git(["init", "--bare", "--quiet", repo]), "create a temporary repository")
        result = _git(["fetch", "--depth=1", "--no-tags", "--", repo_url, f"refs/heads/{branch}"], cwd=Path(repo))
        if result.returncode != 0:
            raise SourceError(f"git fetch from {repo_url!r} failed: {_stderr(result)}")
        return _read(Path(repo), "FETCH_HEAD", path, max_bytes)


def delete_cache(app_name: str) -> None:
    shutil.rmtree(cache_dir(app_name), ignore_errors=True)


def _checked(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise SourceError(f"could not {what}: {_stderr(result)}")

"""Git: check a remote, fetch into a per-app bare cache, resolve a ref, archive a commit.

Always the git CLI with argument lists, a timeout, and no way to prompt for credentials
(a prompt in a worker would hang the deployment forever).
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from deployments import masking
from deployments.engine import priority
from deployments.git import repo_policy
from deployments.masking import without_password

SHA = re.compile(r"^[0-9a-f]{7,40}$")


class SourceError(Exception):
    """Git could not reach the repository or find the ref; the message says which."""


@dataclass(frozen=True)
class Access:
    """How an app's git reaches its remote: with its own deploy key only, and (unless the CLI or a
    superuser set the URL) only to a public address, checked at each call."""
    private_key: str = ""  # OpenSSH format; "" only for git work that never leaves the cache
    allow_private: bool = False
    known_hosts: Path | None = None  # the app's own; None: a throwaway one


# Git and ssh read nothing of the host's: no system or global config, no HOME (~/.ssh, ~/.netrc,
# credential helpers), no ssh agent, no prompt (a prompt in a worker would hang the deployment).
_DROPPED = ("SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_CONFIG",
            "GIT_CONFIG_COUNT", "GIT_PROXY_COMMAND", "XDG_CONFIG_HOME")


@contextmanager
def _environment(remote_url: str | None, access: Access | None) -> Iterator[tuple[dict, list[str]]]:
    """The environment and `-c` options of one git call. For a remote: the address policy is
    applied now (at every fetch, so a name re-pointed at 127.0.0.1 is caught) and git is pinned
    to the address that was checked: http(s) by curl's resolve list (and no redirects), ssh by
    HostName (host keys stay filed under the name)."""
    access = access or Access()
    with tempfile.TemporaryDirectory(prefix="switchyard-git-") as home:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
                   GIT_ASKPASS="/bin/true", SSH_ASKPASS="/bin/true")
        options: list[str] = ["-c", "http.followRedirects=false"]
        ssh = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=accept-new", "-o", f"GlobalKnownHostsFile={os.devnull}",
               "-o", f"UserKnownHostsFile={access.known_hosts or Path(home) / 'known_hosts'}"]
        if access.private_key:
            key = Path(home) / "deploy_key"
            key.touch(mode=0o600)
            key.write_text(access.private_key)
            ssh += ["-i", str(key)]
        else:
            ssh += ["-o", f"IdentityFile={os.devnull}"]
        remote = repo_policy.remote(remote_url) if remote_url is not None else None
        # A path on this machine can only have been stored by the CLI or a superuser (the application layer
        # refuses it to anyone else): what can change after that check is a name's address.
        if remote is not None and remote.scheme != "file" and not access.allow_private:
            env.setdefault("GIT_ALLOW_PROTOCOL", "https:http:ssh")
            address = repo_policy.public_address(remote)  # raises Refused
            if remote.scheme in ("http", "https"):
                pinned = f"[{address}]" if ":" in address else address
                options += ["-c", f"http.curloptResolve={remote.host}:{remote.port}:{pinned}"]
            elif remote.scheme == "ssh":
                ssh += ["-o", f"HostName={address}", "-o", f"HostKeyAlias={remote.host}"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)  # git runs it through a shell
        yield env, options


def _git(args: list[str], cwd: Path | None = None, timeout: float | None = None, remote_url: str | None = None,
         access: Access | None = None, stdout: BinaryIO | None = None, max_output: int = 0,
         stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """git with its output captured, or written to `stdout` (a file). `max_output`: no file git or
    a git it starts writes (the output file, a fetched pack) grows past that many bytes: the kernel
    refuses the write (RLIMIT_FSIZE, with SIGXFSZ ignored so git says "File too large": _too_large),
    so a huge commit cannot fill the disk. `remote_url`: the call reaches that remote (the policy
    and the pinning apply; raises repo_policy.Refused). Past the timeout git and everything it
    started (remote helpers, ssh, index-pack: its process group) are killed."""
    limit = timeout or settings.SWITCHYARD["GIT_TIMEOUT"]
    with _environment(remote_url, access) as (env, options):
        command = ["git", *options, *args]
        # git works on the tenant's repository: not at the deployment's raised priority.
        # RLIMIT_FSIZE set by prlimit; SIGXFSZ stays ignored (Python ignores it, and
        # restore_signals=False passes that on), so a write past the limit fails with "File too
        # large" where the signal would kill the git that made it (an index-pack, mid-fetch).
        limited = ["prlimit", f"--fsize={max_output}", *command] if max_output else command
        process = subprocess.Popen(priority.as_before(limited), cwd=cwd, env=env, stdout=stdout or subprocess.PIPE,
                                   stdin=subprocess.PIPE if stdin is not None else None, stderr=subprocess.PIPE,
                                   start_new_session=True, restore_signals=not max_output)
        try:
            out, err = process.communicate(input=stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise SourceError(f"git {args[0]} did not finish within {limit:g}s") from None
        except BaseException:
            _kill_group(process)
            raise
        return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def _too_large(result: subprocess.CompletedProcess) -> bool:
    """git (or a git it started) was refused a write past _git's max_output."""
    return result.returncode == -signal.SIGXFSZ or b"File too large" in result.stderr


def _stderr(result: subprocess.CompletedProcess) -> str:
    """Git's last few lines: ssh's reason ("Permission denied (publickey)") comes before git's advice."""
    lines = [line.strip() for line in result.stderr.decode(errors="replace").strip().splitlines() if line.strip()]
    return masking.hide_url_passwords(" ".join(lines[-4:])[-600:]) if lines else f"exit code {result.returncode}"


def remote_branches(repo_url: str, access: Access | None = None) -> list[str]:
    """Branch names of a remote; raises SourceError if it cannot be read. Asked by the panel while
    a person waits, so bounded like read_remote_file: SWITCHYARD_REMOTE_CHECK_TIMEOUT seconds, and
    the list of refs written to a file of at most SWITCHYARD_REMOTE_CHECK_MAX_MB (not held in memory
    as it comes)."""
    config = settings.SWITCHYARD
    shown = without_password(repo_url)
    with tempfile.TemporaryFile(prefix="switchyard-refs-") as refs:
        try:
            result = _git(["ls-remote", "--heads", "--", repo_url], timeout=config["REMOTE_CHECK_TIMEOUT"],
                          remote_url=repo_url, access=access, stdout=refs,
                          max_output=config["REMOTE_CHECK_MAX_MB"] * 1024 * 1024)
        except repo_policy.Refused as error:
            raise SourceError(f"cannot read git repository {shown!r}: {error}") from None
        except SourceError:
            raise SourceError(f"cannot read git repository {shown!r}: no answer within "
                              f"{config['REMOTE_CHECK_TIMEOUT']}s (SWITCHYARD_REMOTE_CHECK_TIMEOUT)") from None
        if _too_large(result):
            raise SourceError(f"cannot read git repository {shown!r}: its list of branches is larger than "
                              f"{config['REMOTE_CHECK_MAX_MB']} MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB)")
        if result.returncode != 0:
            raise SourceError(f"cannot read git repository {shown!r}: {_stderr(result)}")
        refs.seek(0)
        return [line.split(b"refs/heads/", 1)[1].decode(errors="replace") for line in refs.read().splitlines()
                if b"refs/heads/" in line]


def cache_dir(app_name: str) -> Path:
    return Path(settings.SWITCHYARD["REPO_CACHE_DIR"]) / f"{app_name}.git"


def known_hosts(app_name: str) -> Path:
    """The host keys the app's git has seen (first use accepts, a changed key is refused)."""
    return Path(settings.SWITCHYARD["REPO_CACHE_DIR"]) / f"{app_name}.known_hosts"


def fetch(app_name: str, repo_url: str, ref: str, access: Access | None = None) -> str:
    """Fetch all branches and tags into the app's cache; return the commit sha `ref` names."""
    repo = cache_dir(app_name)
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _checked(_git(["init", "--bare", "--quiet", str(repo)]), "create the repository cache")
    try:
        result = _git(["fetch", "--force", "--prune", "--no-tags", "--", repo_url,
                       "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], cwd=repo,
                      remote_url=repo_url, access=access)
    except repo_policy.Refused as error:
        raise SourceError(f"git fetch from {without_password(repo_url)!r} refused: {error}") from None
    if result.returncode != 0:
        raise SourceError(f"git fetch from {without_password(repo_url)!r} failed: {_stderr(result)}")
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
        if _too_large(result):
            raise SourceError(f"the source of commit {sha[:12]} ({directory!r}) is larger than "
                              f"{settings.SWITCHYARD['MAX_SOURCE_MB']} MiB (SWITCHYARD_MAX_SOURCE_MB)")
        _checked(result, f"archive {directory!r} of commit {sha[:12]}")
    except BaseException:
        output.close()
        raise
    output.seek(0)
    return output


def tree_id(app_name: str, sha: str, directory: str = ".") -> str:
    """The git tree of that commit's directory: equal for two commits exactly when their files there are."""
    tree = f"{sha}^{{tree}}" if directory in ("", ".") else f"{sha}:{directory}"
    result = _git(["rev-parse", "--verify", "--end-of-options", tree], cwd=cache_dir(app_name))
    _checked(result, f"read the tree of {directory!r} in commit {sha[:12]}")
    return result.stdout.decode().strip()


def substitutes_on_archive(app_name: str, sha: str) -> bool:
    """Whether any .gitattributes of that commit asks for `export-subst`: `git archive` (what a
    build reads) then writes the commit's own details ($Format:%H$) into files, and two commits
    of one tree make different build contexts."""
    result = _git(["grep", "-q", "-e", "export-subst", sha, "--", "*.gitattributes"], cwd=cache_dir(app_name))
    if result.returncode not in (0, 1):  # 1: not found
        _checked(result, f"read the .gitattributes of commit {sha[:12]}")
    return result.returncode == 0


def read_file(app_name: str, sha: str, path: str, max_bytes: int) -> str:
    """One file of that commit (a compose file), as text; refused above max_bytes (before reading it)."""
    return _read(cache_dir(app_name), sha, path, max_bytes)


def _read(repo: Path, commit: str, path: str, max_bytes: int, git: Callable[..., subprocess.CompletedProcess] = _git) -> str:
    shown = commit[:12] if SHA.match(commit) else "the branch's tip"
    size = git(["cat-file", "-s", f"{commit}:{path}"], cwd=repo)
    if size.returncode != 0:
        raise SourceError(f"there is no file {path!r} in commit {shown}")
    if int(size.stdout) > max_bytes:
        raise SourceError(f"{path} is larger than {max_bytes // 1024} KiB")
    result = git(["show", f"{commit}:{path}"], cwd=repo)
    _checked(result, f"read {path!r} of commit {shown}")
    return result.stdout.decode(errors="replace")


# A remote that the panel reads while a person waits: the commit and its trees only (no file's
# content but the one read), each pack one file (so the size cap bounds the whole transfer).
_PEEK_REMOTE = (("remote.origin.promisor", "true"), ("remote.origin.partialclonefilter", "blob:none"))


def read_remote_file(repo_url: str, branch: str, path: str, max_bytes: int, access: Access) -> str:
    """One file at the tip of a remote branch (a compose file checked when an app is created or its
    source changes), in the web process while a person waits, so bounded: a shallow fetch of the
    commit and its trees only (--filter=blob:none: the one file is fetched when it is read; a server
    that ignores the filter sends the whole tree), at most SWITCHYARD_REMOTE_CHECK_MAX_MB written,
    within SWITCHYARD_REMOTE_CHECK_TIMEOUT seconds in all. Fetched into a throwaway repository: the
    app's cache is the worker's."""
    with remote_tip(repo_url, branch, path, access) as (repo, git):
        return _read(repo, "FETCH_HEAD", path, max_bytes, git=git)


@contextmanager
def remote_tip(repo_url: str, branch: str, path: str, access: Access) -> Iterator[tuple[Path, Callable]]:
    """A throwaway repository holding the branch's tip (FETCH_HEAD: its commit and trees, each file
    fetched when it is read), and the git callable that reads it within read_remote_file's bounds."""
    peek = _Peek.starting_now(repo_url=repo_url, path=path, access=access)
    with tempfile.TemporaryDirectory(prefix="switchyard-peek-") as directory:
        repo = Path(directory)
        _checked(_git(["init", "--bare", "--quiet", directory]), "create a temporary repository")
        for key, value in (("remote.origin.url", repo_url), *_PEEK_REMOTE):
            _checked(_git(["config", key, value], cwd=repo), "configure a temporary repository")
        result = peek.git(["fetch", "--depth=1", "--filter=blob:none", "--no-tags", "origin", f"refs/heads/{branch}"],
                          repo)
        if result.returncode != 0:
            raise SourceError(f"git fetch from {peek.shown!r} failed: {_stderr(result)}")
        yield repo, peek.git


@dataclass(frozen=True)
class _Peek:
    """The bounds of one read_remote_file: every git call it makes shares one deadline and the cap
    on what one call may write, and a call past either fails saying which setting bounds it."""
    repo_url: str
    path: str
    access: Access
    deadline: float
    timeout: int  # SWITCHYARD_REMOTE_CHECK_TIMEOUT, for the message
    max_mb: int  # SWITCHYARD_REMOTE_CHECK_MAX_MB

    @classmethod
    def starting_now(cls, *, repo_url: str, path: str, access: Access) -> "_Peek":
        config = settings.SWITCHYARD
        return cls(repo_url=repo_url, path=path, access=access,
                   deadline=time.monotonic() + config["REMOTE_CHECK_TIMEOUT"],
                   timeout=config["REMOTE_CHECK_TIMEOUT"], max_mb=config["REMOTE_CHECK_MAX_MB"])

    @property
    def shown(self) -> str:
        return without_password(self.repo_url)

    def git(self, args: list[str], cwd: Path, stdout: BinaryIO | None = None,
            stdin: bytes | None = None) -> subprocess.CompletedProcess:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise SourceError("out of time")
            result = _git(["-c", "fetch.unpackLimit=1", *args], cwd=cwd, timeout=left, remote_url=self.repo_url,
                          access=self.access, max_output=self.max_mb * 1024 * 1024, stdout=stdout, stdin=stdin)
        except SourceError:
            raise SourceError(f"reading {self.path} from {self.shown!r} took longer than {self.timeout}s "
                              "(SWITCHYARD_REMOTE_CHECK_TIMEOUT): is the server slow? Try again, or ask the "
                              "administrator") from None
        except repo_policy.Refused as error:
            raise SourceError(f"git fetch from {self.shown!r} refused: {error}") from None
        if _too_large(result):
            raise SourceError(f"reading {self.path} from {self.shown!r} would download more than "
                              f"{self.max_mb} MiB (SWITCHYARD_REMOTE_CHECK_MAX_MB): the branch's "
                              "tip is too large to check here (a server that supports partial clone sends less)")
        return result


def delete_cache(app_name: str) -> None:
    shutil.rmtree(cache_dir(app_name), ignore_errors=True)
    known_hosts(app_name).unlink(missing_ok=True)


def _checked(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise SourceError(f"could not {what}: {_stderr(result)}")

"""A commit's files as a compose file names them (git/repo_files.py), read from a real git
repository: a symlink inside the repository followed, one leaving it refused, a directory named by
its tree and archived under a prefix, the executable bit kept, the size bounded."""
import io
import os
import subprocess
import tarfile
from contextlib import ExitStack

import pytest

from deployments.git import repo_files, source


@pytest.fixture
def repo(tmp_path):
    work = tmp_path / "work"
    (work / "conf").mkdir(parents=True)
    (work / "conf" / "nginx.conf").write_text("server {}")
    (work / "run.sh").write_text("#!/bin/sh\n")
    (work / "run.sh").chmod(0o755)
    (work / "big.bin").write_bytes(b"x" * 2048)
    os.symlink("conf/nginx.conf", work / "inside.conf")
    os.symlink("conf", work / "confdir")
    os.symlink("/etc/passwd", work / "passwd")
    os.symlink("../../outside", work / "conf" / "up")
    os.symlink("nowhere", work / "dangling")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "files"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return repo_files.CommitFiles(repo=work / ".git", commit=sha, max_bytes=1024)


def test_a_file_and_a_symlink_inside_the_repository_are_read(repo):
    assert repo.read_file("conf/nginx.conf") == b"server {}"
    assert repo.read_file("inside.conf") == b"server {}"
    assert repo.read_file("confdir/nginx.conf") == b"server {}"


@pytest.mark.parametrize("path, error, message", [
    ("passwd", LookupError, "'passwd' is a symlink to '/etc/passwd', outside the repository"),
    ("conf/up", LookupError, "'conf/up' is a symlink to '../outside', outside the repository"),
    ("dangling", FileNotFoundError, "there is no 'dangling' in commit "),
    ("missing.conf", FileNotFoundError, "there is no 'missing.conf' in commit "),
    ("big.bin", LookupError, "'big.bin' is larger than 1 KiB"),
])
def test_what_cannot_be_read_says_why(repo, path, error, message):
    with pytest.raises(error) as raised:
        repo.read_file(path)
    assert str(raised.value.args[0]).startswith(message)


def test_a_directory_is_named_by_its_tree_and_archived_under_a_prefix(repo, tmp_path):
    with pytest.raises(IsADirectoryError) as directory:
        repo.read_file("conf")
    with pytest.raises(IsADirectoryError) as through_a_symlink:
        repo.read_file("confdir")
    assert directory.value.args[0] == through_a_symlink.value.args[0]
    with open(tmp_path / "tree.tar", "w+b") as output:
        repo.archive_tree(directory.value.args[0], "entry", output)
        output.seek(0)
        names = tarfile.open(fileobj=io.BytesIO(output.read())).getnames()
    assert sorted(names) == ["entry", "entry/nginx.conf", "entry/up"]


def test_the_executable_bit_is_kept(repo):
    assert repo.mode("run.sh") == 0o755 and repo.mode("conf/nginx.conf") == 0o644


def test_a_branch_tip_is_fetched_on_the_first_read_only(repo, monkeypatch):
    fetched = []
    remote_tip = source.remote_tip
    monkeypatch.setattr(source, "remote_tip", lambda *args: fetched.append(args) or remote_tip(*args))
    with ExitStack() as cleanup:
        tip = repo_files.BranchTip(str(repo.repo), "main", source.Access(allow_private=True), cleanup)
        assert fetched == []
        assert tip.read_file("inside.conf") == b"server {}"
        with pytest.raises(LookupError):
            tip.read_file("passwd")
    assert len(fetched) == 1

"""The tar a release's files volume is filled from (engine/release_files.py): files under their
entry names with their owners and modes, a directory's files under its entry, symlinks that leave
the directory left out; two mounts of the same file the same way share one entry."""
import io
import tarfile

from deployments.compose.project import FileMount
from deployments.engine import release_files


class FakeCommit:
    """What git/repo_files.CommitFiles gives the tar: modes, and a directory as git archives it."""

    def mode(self, path: str) -> int:
        return 0o755 if path.endswith(".sh") else 0o644

    def archive_tree(self, tree: str, prefix: str, output) -> None:
        with tarfile.open(fileobj=output, mode="w") as archive:
            for name, kind, target in (("", "dir", ""), ("index.html", "file", ""), ("css", "dir", ""),
                                       ("css/site.css", "file", ""), ("home", "link", "index.html"),
                                       ("css/up", "link", "../index.html"), ("passwd", "link", "/etc/passwd"),
                                       ("escape", "link", "../../x")):
                info = tarfile.TarInfo(f"{prefix}/{name}".rstrip("/"))
                info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "link": tarfile.SYMTYPE}[kind]
                info.linkname = target
                archive.addfile(info, io.BytesIO(b"") if kind == "file" else None)


def written(mounts: list[FileMount]) -> tuple[dict[str, tarfile.TarInfo], list[str]]:
    output = io.BytesIO()
    left_out = release_files._write_archive(output, {release_files.entry_name(m): m for m in mounts}, FakeCommit())
    output.seek(0)
    return {member.name: member for member in tarfile.open(fileobj=output)}, left_out


def test_files_keep_their_modes_and_secrets_their_owner_and_mode():
    script = FileMount(target="/entrypoint.sh", what="./run.sh", digest="d1", path="run.sh", content=b"#!/bin/sh")
    secret = FileMount(target="/run/secrets/s", what="secret s", digest="d2", path="s.txt", content=b"pw",
                       mode=0o400, uid=33, gid=34)
    members, _ = written([script, secret])
    shown = {name: (m.mode, m.uid, m.gid, m.size) for name, m in members.items()}
    assert shown == {release_files.entry_name(script): (0o755, 0, 0, 9), release_files.entry_name(secret): (0o400, 33, 34, 2)}


def test_a_directory_keeps_the_symlinks_that_stay_inside_it_only():
    site = FileMount(target="/var/www", what="./site", digest="tree", path="site", directory=True)
    members, left_out = written([site])
    entry = release_files.entry_name(site)
    assert sorted(name.removeprefix(entry) for name in members) == ["", "/css", "/css/site.css", "/css/up", "/home",
                                                                    "/index.html"]
    assert left_out == ["./site/passwd", "./site/escape"]


def test_the_same_file_mounted_the_same_way_is_one_entry_and_a_changed_one_another():
    one = FileMount(target="/a", what="./x", digest="d", path="x", content=b"x")
    assert release_files.entry_name(one) == release_files.entry_name(FileMount(target="/b", what="./x", digest="d",
                                                                               path="x", content=b"x"))
    assert release_files.entry_name(one) != release_files.entry_name(FileMount(target="/a", what="./x", digest="e",
                                                                               path="x", content=b"y"))

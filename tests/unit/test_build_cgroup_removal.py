"""A build's parent cgroup is removed with what runc left under it, even while runc removes a RUN
step's cgroup at the same moment (dockerd/build_cgroup.py; a timed-out build once failed with
"internal error: No such file or directory" instead of "timed out")."""
import os
from pathlib import Path

from deployments.dockerd import build_cgroup

NAME = "switchyard-build-test-1-123-0123456789ab"


def _tree(root: Path) -> None:
    for controller in ("pids", "blkio"):
        (root / controller / NAME / "step-a" / "inner").mkdir(parents=True)
        (root / controller / NAME / "step-b").mkdir(parents=True)


def test_every_directory_of_the_parent_is_removed_deepest_first(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.setattr(build_cgroup, "CGROUP_ROOT", tmp_path)
    build_cgroup._remove_directories(NAME)
    assert [p for p in tmp_path.rglob("*") if NAME in str(p)] == []
    assert (tmp_path / "pids").is_dir()  # the controllers' own directories stay


def test_a_directory_removed_by_runc_during_the_walk_is_no_error(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.setattr(build_cgroup, "CGROUP_ROOT", tmp_path)
    vanishing = tmp_path / "blkio" / NAME / "step-a"
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == vanishing:  # listed in its parent a moment ago, gone when read: as runc's rmdir
            os.rmdir(vanishing / "inner")
            os.rmdir(vanishing)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    build_cgroup._remove_directories(NAME)
    assert [p for p in tmp_path.rglob("*") if NAME in str(p)] == []

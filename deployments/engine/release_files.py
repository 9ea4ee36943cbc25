"""A Compose release's files (compose/project.py FileMount: bind-mounted repository files, secrets,
configs) as its containers get them: one tar made from the release's commit and the values the
compose file was read with, put into the deployment's files volume at the start of the start
phase (dockerd/release_files.py), then bind-mounted read-only, entry by entry, into the containers
of the services that mount them. The volume goes once no container uses it (remove_unused)."""
import hashlib
import io
import posixpath
import tarfile
import tempfile
from typing import BinaryIO

from deployments.compose.project import FileMount, Project, ServiceSpec
from deployments.dockerd import release_files
from deployments.engine.logs import DeploymentLog
from deployments.git import repo_files
from deployments.models import Deployment


def entry_name(mount: FileMount) -> str:
    """The mount's entry in the volume: what it holds and how (owner, mode), so that two services
    mounting the same file the same way share one entry."""
    made_of = f"{mount.digest}|{mount.path}|{mount.directory}|{mount.mode}|{mount.uid}|{mount.gid}"
    return hashlib.sha256(made_of.encode()).hexdigest()[:32]


def prepare(*, app_name: str, app_id: int, deployment_id: int, commit: str, image: str, project: Project,
            log: DeploymentLog) -> None:
    """The deployment's files volume filled with every file its services mount (none: no volume)."""
    mounts = {entry_name(mount): mount for service in project.services for mount in service.files}
    if not mounts:
        return
    files = repo_files.at_commit(app_name, commit)
    with tempfile.TemporaryFile(prefix="switchyard-files-") as archive:
        for left_out in _write_archive(archive, mounts, files):
            log.write(f"{left_out}: a symlink that leaves its mounted directory is left out of the copy")
        archive.seek(0)
        name = release_files.fill(app_name=app_name, app_id=app_id, deployment_id=deployment_id, image=image,
                                  archive=archive)
    for service in project.services:
        for mount in service.files:
            log.write(f"[{service.name}] {mount.what} → {mount.target}: a read-only copy of commit {commit[:12]}"
                      + (" (rw was written: files of the repository are mounted read-only all the same)"
                         if mount.asked_writable else ""))
    log.write(f"The release's files are in the volume {name}")


def _write_archive(output: BinaryIO, mounts: dict[str, FileMount], files: repo_files.CommitFiles) -> list[str]:
    """Each file under its entry name; each directory's files (as git archives them) under it.
    Returns the symlinks left out."""
    left_out = []
    with tarfile.open(fileobj=output, mode="w") as archive:
        for name, mount in mounts.items():
            if mount.directory:
                left_out += _add_directory(archive, name, mount, files)
                continue
            content = mount.content or b""
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(content), mount.uid, mount.gid
            info.mode = mount.mode if mount.mode is not None else files.mode(mount.path)
            archive.addfile(info, io.BytesIO(content))
    return left_out


def _add_directory(archive: tarfile.TarFile, name: str, mount: FileMount, files: repo_files.CommitFiles) -> list[str]:
    """A directory's files, directories and the symlinks that stay inside it (one that leaves it
    would point at whatever the container has there, and Docker refuses to extract it)."""
    left_out = []
    with tempfile.TemporaryFile(prefix="switchyard-tree-") as tree:
        files.archive_tree(mount.digest, name, tree)
        tree.seek(0)
        with tarfile.open(fileobj=tree, mode="r:") as members:
            for member in members:
                if not (member.name == name or member.name.startswith(f"{name}/")) or not (
                        member.isfile() or member.isdir() or member.issym()):
                    continue  # git archive writes only files, directories and symlinks under the prefix
                if member.issym() and not _stays_inside(member, name):
                    left_out.append(f"{mount.what}/{member.name.partition('/')[2]}")
                    continue
                archive.addfile(member, members.extractfile(member) if member.isfile() else None)
    return left_out


def _stays_inside(link: tarfile.TarInfo, directory: str) -> bool:
    if link.linkname.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link.name), link.linkname))
    return resolved == directory or resolved.startswith(f"{directory}/")


def binds(*, app_name: str, app_id: int, deployment_id: int, spec: ServiceSpec) -> tuple[tuple[str, str], ...]:
    """(source, target) of each file the service mounts: entries of the deployment's files volume."""
    if not spec.files:
        return ()
    directory = release_files.source_directory(app_name, app_id, deployment_id)
    return tuple((f"{directory}/{entry_name(mount)}", mount.target) for mount in spec.files)


def remove_unused(app_name: str, app_id: int, *, ending: int | None = None) -> list[str]:
    """The app's files volumes that no container uses any more, but those of its deployments that
    are still running (one in its start phase fills its volume before starting containers), the
    one `ending` (undoing what it started) apart."""
    running = Deployment.objects.filter(app_id=app_id).exclude(state__in=Deployment.FINAL_STATES).exclude(id=ending)
    return release_files.remove_unused(keep=running.values_list("id", flat=True), app_name=app_name)

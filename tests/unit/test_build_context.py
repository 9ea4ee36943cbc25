"""The context dockerd is sent (dockerfile/build_context.py for_build): the tenant's .dockerignore
applied as `docker build` applies it, and the checked Dockerfile in under a name that follows
from its text, listed in a .dockerignore so that dockerd takes it out before any COPY."""
import io
import tarfile

from deployments.dockerd.dockerignore import excluder
from deployments.dockerfile.build_context import CHECKED_DOCKERFILE, dockerfile_from_context, for_build

CHECKED = "FROM scratch AS stage-0\nCOPY . /app\n"


def _archive(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    buffer.seek(0)
    return buffer


def _sent(files: dict[str, str], checked: str = CHECKED) -> tuple[dict[str, str], str]:
    with for_build(_archive(files), checked, excluder) as (context, name):
        with tarfile.open(fileobj=context) as archive:
            return {m.name: archive.extractfile(m).read().decode() for m in archive if m.isfile()}, name


def test_the_checked_dockerfile_goes_in_under_a_name_of_ours_that_the_dockerignore_lists():
    sent, name = _sent({"Dockerfile": "FROM ", "app.py": "print()"})
    assert name == CHECKED_DOCKERFILE and sent[name] == CHECKED
    assert sent["Dockerfile"] == "FROM " and sent["app.py"] == "print()"
    assert sent[".dockerignore"].split() == [name, ".dockerignore"]  # dockerd takes both out once read
    with for_build(_archive({"Dockerfile": "FROM "}), CHECKED, excluder) as (context, name):
        assert dockerfile_from_context(context.read(), name) == CHECKED


def test_every_build_sends_the_same_dockerignore_so_the_build_cache_sees_the_same_context():
    """Another app's labels (another checked text) change nothing a `COPY . .` copies."""
    tenants = {".dockerignore": "*.log\n", "a": "1"}
    assert _sent(tenants)[0][".dockerignore"] == _sent(tenants, CHECKED + 'LABEL app="other"\n')[0][".dockerignore"]


def test_a_repository_file_at_our_name_is_replaced_by_the_checked_dockerfile():
    name = _sent({})[1]
    sent, _ = _sent({name: "FROM evil\n"})
    assert sent[name] == CHECKED


def test_the_tenants_dockerignore_is_applied_as_docker_build_applies_it():
    dockerignore = "# build output\n.env\nnode_modules\n/logs/*.log\n!logs/keep.log\n\n**/secret.txt\n"
    sent, name = _sent({".dockerignore": dockerignore, ".env": "TOKEN=1", "node_modules/x/index.js": "x",
                        "logs/a.log": "a", "logs/keep.log": "k", "deep/dir/secret.txt": "s", "src/app.py": "p",
                        "src/notes.log": "n"})
    assert sorted(sent) == sorted([".dockerignore", name, "logs/keep.log", "src/app.py", "src/notes.log"])
    # The tenant's own file stays (it does not list itself), with ours after it.
    assert sent[".dockerignore"] == dockerignore.rstrip("\n") + f"\n{name}\n"

"""What a build's `COPY . dest` copies (dockerfile/build_context.py for_build): the repository as
`docker build` would send it, without what its .dockerignore excludes and without Switchyard's
checked Dockerfile; and so another app of the same files finds that step in the build cache."""
from deployments.dockerd import containers, daemon
from deployments.models import LogLine

COPY_ALL = "COPY . /www/ctx/\n"


def _listing(app_name: str) -> list[str]:
    container = containers.listed(app_name)[0]
    result = daemon.client().containers.get(container.id).exec_run(["/bin/busybox", "ls", "-A", "/www/ctx"])
    return result.output.decode().split()


def _copy_step_cached(deployment) -> bool:
    lines = list(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))
    step = next(i for i, line in enumerate(lines) if line.endswith(f": {COPY_ALL.strip()}"))
    return "Using cache" in lines[step + 1]


def test_copy_of_the_context_leaves_out_what_dockerignore_excludes_and_the_checked_dockerfile(stack, app_repo):
    app_repo.commit_version("v1", extra_dockerfile=COPY_ALL)
    app_repo.commit_files({".dockerignore": "secret.txt\n", "secret.txt": "not for the image"}, "ignore a file")
    first = stack.deploy_and_wait(stack.create_app(app_repo, name="copier"))
    assert first.state == "succeeded", first.error

    listed = _listing("copier")
    assert "Dockerfile" in listed and "www" in listed and ".dockerignore" in listed, listed
    assert "secret.txt" not in listed and not any(name.startswith(".switchyard") for name in listed), listed

    second = stack.deploy_and_wait(stack.create_app(app_repo, name="copier-two"))
    assert second.state == "succeeded", second.error
    assert _copy_step_cached(second)  # a checked Dockerfile of another name in the context missed it

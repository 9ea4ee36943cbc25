"""A Compose service with `image:` and no `build` (compose/images.py): accepted with its pull
policy and platform; every refusal names the service and the key."""
from deployments.compose.file import load
from deployments.compose.images import host_platform_name
from deployments.compose.project import ComposeError, Role

DB_APP = """
services:
  web:
    build: .
    depends_on: [db]
  db:
    image: 127.0.0.1:5000/sy-test/db:1
    volumes: [data:/data]
    {extra}
volumes:
  data: {{}}
"""


def _load(extra: str = ""):
    return load(DB_APP.format(extra=extra), "web", {}, default_replicas=1)


def _problems(extra: str) -> list[str]:
    try:
        _load(extra)
    except ComposeError as error:
        return error.problems
    raise AssertionError("accepted")


def test_an_image_service_is_accepted_with_the_reference_as_written():
    db = _load().service("db")
    assert (db.image, db.pull_policy, db.platform, db.role) == ("127.0.0.1:5000/sy-test/db:1", "missing", "", Role.STATEFUL)
    assert _load().web.image == ""  # built


def test_a_service_with_build_and_image_is_built():
    project = load("services: {web: {build: ., image: myorg/web:latest}}", "web", {}, default_replicas=1)
    assert project.web.image == "" and project.web.build_context == "."


def test_pull_policies():
    assert _load("pull_policy: always").service("db").pull_policy == "always"
    assert _load("pull_policy: if_not_present").service("db").pull_policy == "missing"
    # daily, weekly and every_<duration> come with the newer Compose schema (another part of issue 24)
    assert _problems("pull_policy: build") == [
        "services.db.pull_policy: build needs a build: section to build the image from"]


def test_platform_is_a_linux_platform_or_webassembly():
    assert _load(f"platform: {host_platform_name()}").service("db").platform == host_platform_name()
    assert _load("platform: linux/arm64/v8").service("db").platform == "linux/arm64/v8"
    assert _load("platform: wasi/wasm").service("db").platform == "wasi/wasm"
    assert _problems("platform: windows/amd64") == [
        f"services.db.platform: 'windows/amd64': a Linux platform such as {host_platform_name()}, "
        "or wasi/wasm for a WebAssembly runtime"]


def test_a_service_with_neither_build_nor_image_is_refused_by_name():
    try:
        load("services: {web: {build: .}, db: {command: [x]}}", "web", {}, default_replicas=1)
    except ComposeError as error:
        assert error.problems == ["services.db: needs build or image: a service is built from the repository "
                                  "(build:) or runs an image from a registry (image:)"]
    else:
        raise AssertionError("accepted")


def test_a_reference_that_is_no_reference_is_refused_by_name():
    problem, = _problems_of_image("'-v /:/host'")
    assert problem.startswith("services.db.image: '-v /:/host' is not an image reference")
    assert _problems_of_image("'a b'")[0].startswith("services.db.image: 'a b' is not an image reference")


def _problems_of_image(image: str) -> list[str]:
    text = f"services: {{web: {{build: .}}, db: {{image: {image}}}}}"
    try:
        load(text, "web", {}, default_replicas=1)
    except ComposeError as error:
        return error.problems
    raise AssertionError("accepted")

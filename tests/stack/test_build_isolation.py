"""A tenant's Dockerfile cannot make the build host fetch from its own network, nor read another
app's or the panel's images: each attack is refused in the build phase before any `docker build`
runs, with the reason in the log, and the running release keeps serving."""
import http.server
import io
import tarfile
import threading
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings

from deployments.dockerfile import check
from deployments.dockerd import daemon, image_removal, images
from deployments.models import Deployment, LogLine
from tests.support.apprepo import SERVE, AppRepo

UNUSABLE = "no image this app may use has that name or ID"


@contextmanager
def _secret_server():
    """An HTTP server on the host's loopback only, answering a secret to any GET; records the paths asked."""
    secret, hits = f"secret-{uuid.uuid4().hex}", []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = secret.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], secret, hits
    finally:
        server.shutdown()
        server.server_close()


def _image_files(files: dict[str, str]) -> bytes:
    """A tar of busybox and `files` (path → text), as `docker import` takes it."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        archive.add("/bin/busybox", arcname="bin/busybox")
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    return data.getvalue()


def _import(files: dict[str, str], repository: str, changes: list[str] | None = None) -> str:
    """An image made without a build (as a registry or `docker compose build` would hand it over); its ID."""
    daemon.client().api.import_image_from_data(_image_files(files), repository=repository, tag="local",
                                               changes=changes)
    return images.image_id(f"{repository}:local")


@contextmanager
def _panel_image():
    """An image named like the panel's (no Switchyard labels, as `docker compose build` makes them)."""
    tag = f"switchyard-test-{uuid.uuid4().hex[:8]}:local"
    _import({"www/index.html": f"panel-{uuid.uuid4().hex}", "www/health": "ok"}, tag.split(":")[0])
    try:
        yield tag
    finally:
        image_removal.remove_images([tag], force=True)


def _log(deployment: Deployment) -> list[str]:
    return list(LogLine.objects.filter(deployment=deployment).order_by("seq").values_list("text", flat=True))


def _refused_in_build(deployment: Deployment, *words: str) -> None:
    assert deployment.state == "failed", (deployment.state, deployment.error)
    assert deployment.phase == "build", deployment.phase
    for word in words:
        assert word in deployment.error, deployment.error
    log = _log(deployment)
    assert any(deployment.error.split(": ", 1)[1] in line for line in log), log  # the reason is in the log
    assert not any(line.lstrip().startswith("Step ") for line in log), log  # no docker build ran at all


def test_remote_add_is_refused_before_the_build_whatever_its_spelling(stack, app_repo):
    with _secret_server() as (port, secret, hits):
        app_repo.commit_version("v1")
        app = stack.create_app(app_repo, name="fetcher")
        assert stack.deploy_and_wait(app).state == "succeeded"
        for extra in (f"ADD http://127.0.0.1:{port}/secret /www/secret\n",
                      f"ARG SOURCE=http://127.0.0.1:{port}/secret\nADD $SOURCE /www/secret\n",
                      f"ADD http://[::ffff:127.0.0.1]:{port}/secret /www/secret\n"):
            app_repo.commit_version("v2", extra_dockerfile=extra)
            deployment = stack.deploy_and_wait(app)
            _refused_in_build(deployment, "ADD http://", "RUN step")
            assert stack.get("fetcher.localhost") == (200, "v1")
            assert stack.get("fetcher.localhost", "/secret")[0] == 404
        assert hits == []  # the daemon never asked the loopback server for anything


def _deploy_a_victim(stack, tmp_path) -> tuple[str, str]:
    """Another tenant's app `victim`, deployed; its image's tag and ID."""
    victim_repo = AppRepo(tmp_path / "victim")
    victim_repo.commit_version(f"victim-{uuid.uuid4().hex}")
    victim = stack.create_app(victim_repo, name="victim")
    victim_release = stack.deploy_and_wait(victim)
    assert victim_release.state == "succeeded", victim_release.error
    return victim_release.image, images.image_id(victim_release.image)


def _its_own_earlier_image_builds(stack, app_repo, app, own: Deployment) -> None:
    """Its own earlier image is the app's to build on; a stage of its own Dockerfile is no image."""
    app_repo.commit_files({"www/index.html": "v3", "Dockerfile": (
        f"FROM {own.image} AS earlier\nFROM scratch\nCOPY --from=earlier /bin/busybox /bin/busybox\n"
        f"COPY www /www\nCMD {SERVE}\n")}, "v3 from its own image")
    third = stack.deploy_and_wait(app)
    assert third.state == "succeeded", third.error
    assert stack.get("thief.localhost") == (200, "v3")
    assert any(f"images used: {own.image}" in line for line in _log(third))


def _a_compose_service_on_the_victims_image_is_refused(stack, tmp_path, victim_tag: str) -> None:
    """A Compose app: each service's Dockerfile is checked, all before the first build."""
    compose_repo = AppRepo(tmp_path / "compose")
    compose_repo.commit_version("c1")
    compose_repo.commit_files({
        "compose.yaml": "services:\n  web:\n    build: .\n  tool:\n    build: {context: ., dockerfile: tool.Dockerfile}\n",
        "tool.Dockerfile": f"FROM {victim_tag}\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n"}, "compose")
    composed = stack.create_app(compose_repo, name="composed", compose_file="compose.yaml", web_service="web")
    _refused_in_build(stack.deploy_and_wait(composed), "[tool] tool.Dockerfile", UNUSABLE)


def test_another_apps_images_are_refused_and_the_apps_own_are_not(stack, app_repo, tmp_path):
    victim_tag, victim_id = _deploy_a_victim(stack, tmp_path)
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="thief")
    own = stack.deploy_and_wait(app)
    assert own.state == "succeeded", own.error
    attacks = {
        "by tag": f"FROM {victim_tag}\nCMD {SERVE}\n",
        "by image id": f"FROM {victim_id}\nCMD {SERVE}\n",
        "by short id": f"FROM {victim_id.split(':')[1][:12]}\nCMD {SERVE}\n",
        "COPY --from": f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY --from={victim_tag} /www /www\nCMD {SERVE}\n",
    }
    for how, dockerfile in attacks.items():
        app_repo.commit_files({"Dockerfile": dockerfile}, f"steal {how}")
        _refused_in_build(stack.deploy_and_wait(app), UNUSABLE)
        assert stack.get("thief.localhost") == (200, "v1"), how

    # One of the panel's own images (the compose stack's are switchyard:local, switchyard-base:...).
    with _panel_image() as panel_tag:
        app_repo.commit_files({"Dockerfile": f"FROM {panel_tag}\nCMD {SERVE}\n"}, "steal the panel's image")
        _refused_in_build(stack.deploy_and_wait(app), UNUSABLE)
        assert stack.get("thief.localhost") == (200, "v1")

    _its_own_earlier_image_builds(stack, app_repo, app, own)
    _a_compose_service_on_the_victims_image_is_refused(stack, tmp_path, victim_tag)
    assert stack.get("victim.localhost")[0] == 200


def _read_otherwise(base: str, url: str, port: int) -> dict[str, tuple[str, str]]:
    """how -> (Dockerfile, what the refusal says): spellings Docker 20.10 reads otherwise than the
    check used to, each fetching `url` then."""
    return {
        # dockerd reads no escape directive after an empty `# syntax=`: the LABEL ends at the backtick
        "escape directive": (f"# syntax=\n# escape=`\n{base}LABEL a=`\nADD {url} /www/secret\n", "`# syntax=`"),
        # older parsers continue the line after an escaped backslash, dockerd 20.10 does not
        "escaped backslash": (f"{base}LABEL a=\\\\\nADD {url} /www/secret\n", "escaped backslash"),
        "special parameter": (f"{base}ADD http:$-//127.0.0.1:{port}/secret /www/secret\n", "$-"),
        "ENV from before": (f"{base}ENV A=http:\nENV A=x B=${{A}}//127.0.0.1:{port}/secret\nADD $B /www/secret\n",
                            "fetches from a URL"),
        "undeclared proxy variable": (f"{base}ADD $ALL_PROXY /www/secret\n", "$ALL_PROXY is no ARG or ENV"),
    }


def _a_compose_proxy_build_arg_is_refused(stack, tmp_path, base: str, url: str) -> tuple[AppRepo, object]:
    """Docker's predefined HTTP_PROXY set through Compose's build.args; the repository and the app."""
    proxy_repo = AppRepo(tmp_path / "proxy")
    proxy_repo.commit_version("p1")
    proxy_repo.commit_files({
        "compose.yaml": f"services:\n  web:\n    build:\n      context: .\n      args:\n        HTTP_PROXY: {url}\n",
        "Dockerfile": f"{base}ADD $HTTP_PROXY /www/secret\nCMD {SERVE}\n"}, "a proxy build arg")
    proxied = stack.create_app(proxy_repo, name="proxied", compose_file="compose.yaml", web_service="web")
    _refused_in_build(stack.deploy_and_wait(proxied), "HTTP_PROXY is one of Docker's predefined proxy variables")
    return proxy_repo, proxied


def _its_target_stage_builds_with_the_apps_labels(stack, proxy_repo: AppRepo, proxied, base: str) -> None:
    """Without the proxy arg it builds its target stage (renamed in the canonical Dockerfile), and
    its image carries the app's labels as a single-Dockerfile app's does."""
    proxy_repo.commit_files({
        "compose.yaml": "services:\n  web:\n    build:\n      context: .\n      target: Web\n",
        "Dockerfile": f"# a comment\n{base.replace('FROM scratch', 'FROM scratch AS web')}CMD {SERVE}\n"
                      "FROM scratch AS never\nCOPY does-not-exist /x\n"}, "a target stage")
    built = stack.deploy_and_wait(proxied)
    assert built.state == "succeeded", built.error
    assert stack.get("proxied.localhost") == (200, "p1")
    labels = daemon.client().images.get(built.image).labels
    assert (labels["switchyard.app"], labels["switchyard.app-id"], labels["switchyard.instance"]) == (
        "proxied", str(proxied.id), settings.SWITCHYARD["INSTANCE"])


def test_what_docker_would_read_otherwise_than_the_check_fetches_nothing(stack, app_repo, tmp_path):
    """Spellings that Docker 20.10 reads otherwise than the check used to (each fetched the secret
    then); and Docker's predefined proxy variables, set through Compose's build.args."""
    with _secret_server() as (port, secret, hits):
        url = f"http://127.0.0.1:{port}/secret"
        app_repo.commit_version("v1")
        app = stack.create_app(app_repo, name="differ")
        assert stack.deploy_and_wait(app).state == "succeeded"
        base = f"FROM scratch\nLABEL test-repository={app_repo.nonce}\nCOPY busybox /bin/busybox\nCOPY www /www\n"
        for how, (dockerfile, reason) in _read_otherwise(base, url, port).items():
            app_repo.commit_files({"Dockerfile": dockerfile + f"CMD {SERVE}\n"}, how)
            _refused_in_build(stack.deploy_and_wait(app), reason)
            assert stack.get("differ.localhost") == (200, "v1"), how
            assert stack.get("differ.localhost", "/secret")[0] == 404, how

        proxy_repo, proxied = _a_compose_proxy_build_arg_is_refused(stack, tmp_path, base, url)
        assert hits == []  # the daemon never asked the loopback server for anything

        _its_target_stage_builds_with_the_apps_labels(stack, proxy_repo, proxied, base)


@contextmanager
def _victim_image():
    """Another app's image (its labels) whose ID starts with a letter, so that its short ID is a
    valid stage name too; it serves a secret of its own."""
    secret, repository = f"victim-{uuid.uuid4().hex}", f"sy-victim-{uuid.uuid4().hex[:8]}"
    labels = [f"LABEL switchyard.app=victim switchyard.app-id=1 switchyard.instance={settings.SWITCHYARD['INSTANCE']}"]
    try:
        for attempt in range(100):
            image_id = _import({"www/index.html": secret, "www/health": "ok", "www/n": str(attempt)}, repository,
                               labels)
            if image_id.split(":")[1][0] in "abcdef":
                break
        yield image_id.split(":")[1][:12], secret
    finally:
        image_removal.remove_images([f"{repository}:local"], force=True)


def test_a_stage_named_like_another_apps_short_id_is_the_stage_and_the_id_is_refused(stack, app_repo):
    with _victim_image() as (short_id, victim_secret):
        app_repo.commit_version("v1")
        app = stack.create_app(app_repo, name="shorty")
        assert stack.deploy_and_wait(app).state == "succeeded"

        # A stage named like the victim's short ID: every reference to it reads the stage.
        app_repo.commit_version("v2")
        app_repo.commit_files({"Dockerfile": (
            f"FROM scratch AS {short_id}\nLABEL test-repository={app_repo.nonce}\nCOPY www /www\n"
            f"FROM scratch\nCOPY busybox /bin/busybox\nCOPY --from={short_id} /www /www\nCMD {SERVE}\n")},
            "a stage named like a short ID")
        staged = stack.deploy_and_wait(app)
        assert staged.state == "succeeded", staged.error
        assert stack.get("shorty.localhost") == (200, "v2")

        # The ID itself, however spelt, is refused; with the same words as an ID nothing has.
        messages = []
        for how, reference in {"$- inside": f"{short_id[:4]}$-{short_id[4:]}", "short ID": short_id,
                               "no such ID": "fedcba987654"}.items():
            app_repo.commit_files({"Dockerfile": f"FROM {reference}\nCMD {SERVE}\n"}, how)
            refused = stack.deploy_and_wait(app)
            _refused_in_build(refused, "$-" if "$" in reference else UNUSABLE)
            messages.append(refused.error.replace(reference, "X"))
            assert stack.get("shorty.localhost") == (200, "v2"), how
        assert messages[1] == messages[2]  # no oracle of which IDs exist
        assert victim_secret not in stack.get("shorty.localhost")[1]


def test_a_base_image_pulled_for_the_check_has_its_onbuild_triggers_checked(stack, app_repo):
    """No registry is reachable here: the pull is played by tagging an image made with an ONBUILD
    ADD (as a registry would serve it) under the unqualified name the Dockerfile asks for."""
    with _secret_server() as (port, secret, hits):
        stored = f"sy-registry-{uuid.uuid4().hex[:8]}"
        _import({"www/index.html": "base"}, stored, [f"ONBUILD ADD http://127.0.0.1:{port}/secret /www/secret"])
        name, pulled = f"onbuild-{uuid.uuid4().hex[:8]}", []

        def pull(reference: str) -> bool:
            pulled.append(reference)
            daemon.client().api.tag(f"{stored}:local", name, "latest")
            return True

        owner = check.Owner(app="puller", app_id=1, instance=settings.SWITCHYARD["INSTANCE"])
        try:
            with pytest.raises(check.Refused, match=f"{name} has an ONBUILD trigger that is refused: .*RUN step"):
                check.check(f"FROM {name}\n", owner=owner, build_args={}, inspect=images.image_facts, pull=pull)
            assert pulled == [name]

            # Through the worker: the image (local now) is refused for its trigger; a name that is
            # not here and cannot be pulled gets the one clear refusal, not an internal error.
            app_repo.commit_version("v1")
            app = stack.create_app(app_repo, name="puller")
            assert stack.deploy_and_wait(app).state == "succeeded"
            app_repo.commit_files({"Dockerfile": f"FROM {name}\nCMD {SERVE}\n"}, "an ONBUILD base")
            _refused_in_build(stack.deploy_and_wait(app), "ONBUILD trigger", "RUN step")
            app_repo.commit_files({"Dockerfile": f"FROM nothing-{uuid.uuid4().hex[:8]}\nCMD {SERVE}\n"}, "no such base")
            _refused_in_build(stack.deploy_and_wait(app), UNUSABLE)
            # A registry the administrator did not list is never asked (dockerd would follow its
            # redirects on the host's network), local image or not.
            app_repo.commit_files({"Dockerfile": f"FROM registry.example.org/{name}\nCMD {SERVE}\n"}, "unlisted")
            _refused_in_build(stack.deploy_and_wait(app), "SWITCHYARD_PULL_REGISTRIES", "not from registry.example.org")
            assert stack.get("puller.localhost") == (200, "v1")
        finally:
            image_removal.remove_images([f"{name}:latest", f"{stored}:local"])
        assert hits == []

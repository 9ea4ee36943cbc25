"""A tenant's Dockerfile cannot make the build host fetch from its own network, nor read another
app's or the panel's images: each attack is refused in the build phase before any `docker build`
runs, with the reason in the log, and the running release keeps serving."""
import http.server
import io
import tarfile
import threading
import uuid
from contextlib import contextmanager


from deployments.engine import runtime
from deployments.models import Deployment, LogLine
from tests.apprepo import SERVE, AppRepo


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


@contextmanager
def _panel_image():
    """An image named like the panel's (no Switchyard labels, as `docker compose build` makes them)."""
    files = io.BytesIO()
    with tarfile.open(fileobj=files, mode="w") as archive:
        archive.add("/bin/busybox", arcname="bin/busybox")
        for name, text in (("www/index.html", f"panel-{uuid.uuid4().hex}"), ("www/health", "ok")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    tag = f"switchyard-test-{uuid.uuid4().hex[:8]}:local"
    runtime.client().api.import_image_from_data(files.getvalue(), repository=tag.split(":")[0], tag="local")
    try:
        yield tag
    finally:
        runtime.client().images.remove(tag, force=True)


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


def test_another_apps_images_are_refused_and_the_apps_own_are_not(stack, app_repo, tmp_path):
    victim_repo = AppRepo(tmp_path / "victim")
    victim_repo.commit_version(f"victim-{uuid.uuid4().hex}")
    victim = stack.create_app(victim_repo, name="victim")
    victim_release = stack.deploy_and_wait(victim)
    assert victim_release.state == "succeeded", victim_release.error
    victim_tag, victim_id = victim_release.image, runtime.image_id(victim_release.image)

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
        _refused_in_build(stack.deploy_and_wait(app), "belongs to another app")
        assert stack.get("thief.localhost") == (200, "v1"), how

    # One of the panel's own images (the compose stack's are switchyard:local, switchyard-base:...).
    with _panel_image() as panel_tag:
        app_repo.commit_files({"Dockerfile": f"FROM {panel_tag}\nCMD {SERVE}\n"}, "steal the panel's image")
        _refused_in_build(stack.deploy_and_wait(app), "the panel's own")
        assert stack.get("thief.localhost") == (200, "v1")

    # Its own earlier image is the app's to build on; a stage of its own Dockerfile is no image.
    app_repo.commit_files({"www/index.html": "v3", "Dockerfile": (
        f"FROM {own.image} AS earlier\nFROM scratch\nCOPY --from=earlier /bin/busybox /bin/busybox\n"
        f"COPY www /www\nCMD {SERVE}\n")}, "v3 from its own image")
    third = stack.deploy_and_wait(app)
    assert third.state == "succeeded", third.error
    assert stack.get("thief.localhost") == (200, "v3")
    assert any(f"images used: {own.image}" in line for line in _log(third))

    # A Compose app: each service's Dockerfile is checked, all before the first build.
    compose_repo = AppRepo(tmp_path / "compose")
    compose_repo.commit_version("c1")
    compose_repo.commit_files({
        "compose.yaml": "services:\n  web:\n    build: .\n  tool:\n    build: {context: ., dockerfile: tool.Dockerfile}\n",
        "tool.Dockerfile": f"FROM {victim_tag}\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n"}, "compose")
    composed = stack.create_app(compose_repo, name="composed", compose_file="compose.yaml", web_service="web")
    _refused_in_build(stack.deploy_and_wait(composed), "[tool] tool.Dockerfile", "belongs to another app")
    assert stack.get("victim.localhost")[0] == 200

"""An app's registry credentials go with a pull from the host they were stored for, and nowhere else
(engine/phases/pull.py credentials_for); the digest a pull leaves is the one of the image's own repository."""
from deployments.engine.phases import pull
from deployments.models import App


def _app(host: str = "registry.example.com:5000", username: str = "bot") -> App:
    app = App(name="shop", registry_host=host, registry_username=username)
    app.registry_password = "r3g-s3cret"
    return app


def test_credentials_go_to_their_own_registry_only():
    app = _app()
    assert pull.credentials_for(app, "registry.example.com:5000/team/db:1") == {
        "username": "bot", "password": "r3g-s3cret"}
    assert pull.credentials_for(app, "REGISTRY.example.com:5000/team/db@sha256:" + "a" * 64) is not None
    for elsewhere in ("registry.example.com/team/db:1",  # another port is another registry
                      "registry.example.com:5001/team/db:1", "evil.example/registry.example.com:5000/db:1",
                      "registry.example.com.evil.example:5000/db:1", "postgres:16", "team/db:1"):
        assert pull.credentials_for(app, elsewhere) is None, elsewhere


def test_docker_hub_credentials_go_to_docker_hub_names_only():
    app = _app(host="docker.io")
    assert pull.credentials_for(app, "team/private:1") is not None
    assert pull.credentials_for(app, "ghcr.io/team/private:1") is None


def test_no_credentials_without_a_host_or_username():
    assert pull.credentials_for(_app(host=""), "registry.example.com:5000/db:1") is None
    assert pull.credentials_for(_app(username=""), "registry.example.com:5000/db:1") is None


def test_the_pinned_reference_is_the_digest_of_the_images_own_repository():
    digests = ("127.0.0.1:5000/other@sha256:" + "1" * 64, "127.0.0.1:5000/team/db@sha256:" + "2" * 64)
    assert pull.pinned_reference("127.0.0.1:5000/team/db:1", digests) == digests[1]
    assert pull.pinned_reference("docker.io/library/postgres:16", ("postgres@sha256:" + "3" * 64,)) == \
        "postgres@sha256:" + "3" * 64
    assert pull.pinned_reference("postgres", ("mysql@sha256:" + "3" * 64,)) == ""

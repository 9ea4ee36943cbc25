"""Nothing of an app is published on the host. `ports:` only names the container port HAProxy
routes to (tests/stack/test_compose_format.py); a UDP port on the web service, which HAProxy
cannot route, is refused at create, in the settings and at deploy, where the running release
keeps serving, and no container ever has a port binding."""
import pytest

from deployments.application.errors import InvalidInput
from deployments.dockerd import containers, daemon
from deployments.models import App, Deployment
from tests.support.processes import free_port
from tests.support.tenancy import commit_compose, make_tenant, own_app, patch_app, token_client

UDP_REFUSED = "UDP is not supported: HAProxy routes HTTP (TCP) to the web service"


def test_a_udp_web_port_is_refused_at_create_in_the_settings_and_at_deploy_and_nothing_is_published(stack, app_repo):
    port = free_port()
    app_repo.commit_version("v1")
    commit_compose(app_repo, f"services:\n  web:\n    build: .\n    ports: ['127.0.0.1:{port}:8000/udp']\n")
    tenant = make_tenant()

    with pytest.raises(InvalidInput) as refused:
        own_app(app_repo, tenant, "ported", compose_file="compose.yaml")
    assert f"compose.yaml: services.web.ports: 127.0.0.1:{port}:8000/udp: {UDP_REFUSED}" \
           in refused.value.errors["compose_file"][0]
    assert not App.objects.filter(name="ported").exists()
    # Nor through the settings, as a tenant.
    single = own_app(app_repo, tenant, "single")
    response = patch_app(token_client(tenant), "single", {"compose_file": "compose.yaml"})
    assert response.status_code == 400 and "services.web.ports" in response.json()["detail"]
    single.refresh_from_db()
    assert single.compose_file == ""

    commit_compose(app_repo, f"services:\n  web:\n    build: .\n    ports: ['{port}:8000']\n"
                             "  cache:\n    build: .\n    ports: ['127.0.0.1:6379:6379']\n")
    app = own_app(app_repo, tenant, "ported", compose_file="compose.yaml")
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    commit_compose(app_repo, f"services:\n  web:\n    build: .\n    ports: ['{port}:8000/udp']\n")

    second = stack.deploy_and_wait(app)

    assert second.state == Deployment.State.FAILED and second.phase == "fetch"
    assert f"services.web.ports: {port}:8000/udp: {UDP_REFUSED}" in second.error
    for container in containers.listed():
        host_config = daemon.client().api.inspect_container(container.id)["HostConfig"]
        assert not host_config["PortBindings"] and not host_config["PublishAllPorts"], container.name
    assert stack.get("ported.localhost") == (200, "v1")

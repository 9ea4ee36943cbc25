"""A compose file as people write it, deployed on the real stack: a web service named with
capitals and a dot, its `ports:` naming the container port HAProxy routes to (the app's port
setting says otherwise), nothing published on the host, other services' ports ignored, and
each of these said in the deployment log."""
import re

from deployments.compose.service_names import docker_name
from deployments.dockerd import daemon
from deployments.models import Deployment

COMPOSE = """services:
  Front.End:
    build: .
    ports: ["8080:8000", "127.0.0.1:9443:9443"]
  Worker:
    build: .
    ports: ["5432:5432"]
"""


def test_a_capitalised_web_service_is_routed_to_the_port_its_ports_name_and_nothing_is_published(stack, app_repo):
    app_repo.commit_version("v1")  # answers on 8000
    (app_repo.path / "compose.yaml").write_text(COMPOSE)
    app_repo._commit("compose")
    app = stack.create_app(app_repo, name="fmt", compose_file="compose.yaml", web_service="Front.End", port=3000)

    deployment = stack.deploy_and_wait(app)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert stack.get("fmt.localhost") == (200, "v1")
    lines = list(deployment.log_lines.values_list("text", flat=True))
    assert ("compose.yaml: services.Front.End.ports: several ports (8000, 9443); HAProxy routes to container port "
            "8000 (the first; set the app's port to choose another)") in lines
    assert ("compose.yaml: services.Worker.ports: 5432:5432 ignored: nothing is published on the host; the other "
            "services reach this one by its name") in lines
    assert [c.port for c in deployment.containers] == [8000]
    worker = next(service for service in deployment.services if service.name == "Worker")
    assert re.fullmatch(r"worker-[0-9a-f]{6}", docker_name("Worker"))
    assert worker.image.startswith(app.service_image_repository(docker_name("Worker")) + ":")
    assert deployment.image.startswith(app.service_image_repository(docker_name("Front.End")) + ":")
    assert all(docker_name("Worker") in c.name and c.name == c.name.lower() for c in worker.containers)
    api = daemon.client().api
    for container in [*deployment.containers, *worker.containers]:
        assert not api.inspect_container(container.id)["HostConfig"].get("PortBindings"), container.name

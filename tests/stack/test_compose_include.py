"""A Compose app whose web service is in an `include`d file, against the real stack: it deploys,
and the panel shows its services, notices and phases as the worker read them with that file
(Deployment.compose_summary), where reading the stored compose.yaml alone would find no web
service."""
import pytest

from deployments import presenters
from deployments.compose.project import ComposeError
from deployments.models import Deployment
from tests.support.apprepo import AppRepo

MAIN = "include: [services/web.yaml]\nservices:\n  worker: {build: ., command: [/bin/busybox, sleep, '3600']}\n"
INCLUDED = "services:\n  web:\n    build: ..\n    ports: ['8080:8000']\n"


def test_a_web_service_from_an_included_file_deploys_and_the_app_page_shows_it(stack, app_repo: AppRepo, client,
                                                                                django_user_model):
    app_repo.commit_version("v1")
    (app_repo.path / "compose.yaml").write_text(MAIN)
    (app_repo.path / "services").mkdir()
    (app_repo.path / "services" / "web.yaml").write_text(INCLUDED)
    app_repo._commit("compose with an include")
    app = stack.create_app(app_repo, name="inc", compose_file="compose.yaml")

    deployment = stack.deploy_and_wait(app)

    assert deployment.state == Deployment.State.SUCCEEDED, deployment.error
    assert stack.get("inc.localhost") == (200, "v1")
    assert deployment.compose_summary["roles"] == {"web": ["web"], "stateful": [], "worker": ["worker"], "job": [],
                                                   "chain": []}
    app.refresh_from_db()
    shown = presenters.compose(app)
    assert shown["problem"] == ""
    assert ("services.web.ports: nothing is published on the host; the app's domains reach container port 8000 "
            "through HAProxy") in shown["notices"]
    assert [row["name"] for row in shown["services"]] == ["web", "worker"]
    assert presenters.phase_services(deployment)["drain"] == "worker, web"
    with pytest.raises(ComposeError):  # what the page read before: the stored file alone has no web service
        presenters.compose_summary(Deployment(app=app, compose_text=deployment.compose_text))
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123456"))
    page = client.get("/apps/inc/").content.decode()
    assert "nothing is published on the host" in page and 'class="error-box"' not in page

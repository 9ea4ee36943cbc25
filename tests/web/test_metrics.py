"""GET /metrics: deployments, phases, switches and rollbacks from the database, live traffic from
HAProxy, in Prometheus' format; only for a superuser's token or an allowed address."""
import ipaddress
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from deployments.haproxy import runtime_api
from deployments.models import ApiToken, App, Deployment
from deployments.traffic import target


def _scrape(token: str) -> dict[str, dict]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture
def root_token(django_user_model) -> str:
    return ApiToken.issue(django_user_model.objects.create_superuser("root", password="pw-root-1234"), "prometheus")[1]


def _finished(app: App, state: str, seconds: float, **fields) -> Deployment:
    started = timezone.now() - timedelta(seconds=seconds)
    return Deployment.objects.create(app=app, ref="main", state=state, started_at=started, finished_at=timezone.now(),
                                     phase_times={"build": {"start": started.isoformat(),
                                                            "end": (started + timedelta(seconds=2)).isoformat()}},
                                     **fields)


def test_deployments_phases_switches_and_rollbacks_are_counted_from_the_database(transactional_db, root_token):
    shop = App.objects.create(name="shop", repo_url="/srv/shop.git")
    _finished(shop, Deployment.State.SUCCEEDED, 40, switch_ms=3.0)
    _finished(shop, Deployment.State.SUCCEEDED, 15, switch_ms=30.0)
    _finished(shop, Deployment.State.ROLLED_BACK, 70, rollback_reason="canary-5xx")
    _finished(shop, Deployment.State.FAILED, 8)
    Deployment.objects.create(app=shop, ref="main", state=Deployment.State.RUNNING)  # not finished: not counted

    samples = _scrape(root_token)

    by_state = samples["switchyard_deployments_total"]
    assert by_state[(("app", "shop"), ("state", "succeeded"))] == 2
    assert by_state[(("app", "shop"), ("state", "rolled_back"))] == 1
    assert by_state[(("app", "shop"), ("state", "failed"))] == 1
    assert samples["switchyard_rollbacks_total"] == {(("app", "shop"), ("reason", "canary-5xx")): 1}
    durations = samples["switchyard_deployment_duration_seconds_bucket"]
    assert durations[(("le", "20.0"), ("state", "succeeded"))] == 1
    assert durations[(("le", "60.0"), ("state", "succeeded"))] == 2
    assert samples["switchyard_deployment_phase_duration_seconds_count"] == {(("phase", "build"),): 4}
    switches = samples["switchyard_switch_latency_seconds_bucket"]
    assert (switches[(("le", "0.005"),)], switches[(("le", "0.05"),)]) == (1, 2)
    assert samples["switchyard_switch_latency_seconds_sum"][()] == pytest.approx(0.033)


def test_metrics_need_a_superusers_token_or_an_allowed_address(transactional_db, django_user_model, settings):
    user_token = ApiToken.issue(django_user_model.objects.create_user("eve", password="pw-eve-12345"), "t")[1]
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {user_token}").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer sy_not-a-token").status_code == 401
    assert Client().post("/metrics").status_code == 405

    settings.SWITCHYARD = {**settings.SWITCHYARD, "METRICS_ALLOWED_IPS": (ipaddress.ip_network("127.0.0.0/8"),)}
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 401


def test_live_requests_and_5xx_come_from_haproxy_and_its_own_exporter_answers(stack, app_repo, root_token):
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo)
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    for _ in range(10):
        assert stack.get(f"{app.name}.localhost") == (200, "v1")
    stack.get(f"{app.name}.localhost", "/cgi-bin/missing")  # a 404: an answer, not a 5xx

    samples = _scrape(root_token)

    assert samples["switchyard_haproxy_up"][()] == 1
    assert samples["switchyard_app_requests_total"][(("app", app.name),)] >= 11
    assert samples["switchyard_app_responses_5xx_total"][(("app", app.name),)] == 0
    assert samples["switchyard_switch_latency_seconds_count"][()] == 1
    exporter = runtime_api._UnixHTTPConnection(target.paths().stats_socket, 5)
    exporter.request("GET", "/metrics")
    answer = exporter.getresponse()
    text = answer.read().decode()
    assert answer.status == 200 and "haproxy_process_nbthread" in text
    app.refresh_from_db()
    assert f'haproxy_backend_http_responses_total{{proxy="{app.backend_name(app.live_colour)}"' in text

"""In headless Chromium: a Compose app's services on its page, why its web service is recreated, and
what its deployment started, kept and replaced."""
from playwright.sync_api import expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS, log_in


def _a_compose_app_with_a_live_release(owner) -> tuple[Deployment, Deployment]:
    """App `counter` (web, a stateful store, a worker) as the worker leaves it after two releases:
    the store started by the first and kept, the worker restarting; returns (first, live)."""
    from deployments.dockerd.values import Container, ServiceRelease

    app = App.objects.create(name="counter", repo_url="/srv/counter.git", owner=owner, compose_file="compose.yaml")
    compose_text = ("services:\n  web: {build: ., container_name: counter-web}\n"
                    "  store: {build: store, volumes: [counter:/data]}\n  worker: {build: .}\nvolumes: {counter: {}}\n")
    first = Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, compose_text=compose_text)
    store = ServiceRelease(name="store", role="stateful", image="switchyard/counter/store:1f2e3d4c5b6a",
                           definition="d1", image_id="sha256:1", started_by=first.pk,
                           containers=(Container(id="c1", name=f"sy-counter-{first.pk}_store-1", ip="", port=0),))
    live = Deployment.objects.create(
        app=app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="a" * 40, compose_text=compose_text,
        image="switchyard/counter/web:aaaaaaaaaaaa", colour="green",
        containers=[Container(id="w1", name="sy-counter-web", ip="", port=8000)])
    live.services = [store, ServiceRelease(
        name="worker", role="worker", image="switchyard/counter/worker:aaaaaaaaaaaa", definition="d2",
        image_id="sha256:2", started_by=live.pk, state="restarting (exit code 1)",
        containers=(Container(id="k1", name=f"sy-counter-{live.pk}_worker-1", ip="", port=0),))]
    live.save(update_fields=["services"])
    App.objects.filter(pk=app.pk).update(live_deployment=live, live_colour="green")
    return first, live


def test_person_sees_a_compose_apps_services_and_why_its_web_service_is_recreated(transactional_db, page,
                                                                                    django_user_model):
    dee = django_user_model.objects.create_user("dee", password="pw-dee-45678")
    first, live = _a_compose_app_with_a_live_release(dee)
    log_in(page, "dee", "pw-dee-45678")

    page.goto("/apps/counter/")
    services = page.locator("#services")
    expect(services).to_contain_text("from compose.yaml")
    expect(page.locator("#recreate-note")).to_contain_text(
        "service web cannot run twice at once")
    expect(page.locator("#recreate-note")).to_contain_text("container_name 'counter-web'")
    expect(services.locator("tr[data-service='store']")).to_contain_text("holds state: kept unless its definition changes")
    expect(services.locator("tr[data-service='store']")).to_contain_text(f"sy-counter-{first.pk}_store-1")
    expect(services.locator("tr[data-service='worker']")).to_contain_text("restarting (exit code 1)")
    expect(services.locator("tr[data-service='web']")).to_contain_text("routed: blue/green behind HAProxy")
    services.scroll_into_view_if_needed()
    services.screenshot(path=str(SCREENSHOTS / "compose_services.png"))

    page.goto(f"/deployments/{live.pk}/")
    expect(page.locator("#stepper li[data-phase='start'] .services")).to_have_text("store, web")
    expect(page.locator("#stepper li[data-phase='drain'] .services")).to_have_text("worker, web")
    expect(page.locator("#deployment-services")).to_contain_text("store (holds state: kept unless its definition "
                                                                 "changes: carried over, untouched)")
    expect(page.locator("#deployment-services")).to_contain_text("worker (replaced after the switch)")
    page.screenshot(path=str(SCREENSHOTS / "compose_deployment.png"))

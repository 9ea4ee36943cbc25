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


DIGEST = "sha256:" + "ab12" * 16


def _an_app_with_a_pulled_db(owner) -> Deployment:
    """App `shop` whose live release runs its `db` image service pinned by digest."""
    from deployments.dockerd.values import Container, ServiceRelease

    app = App.objects.create(name="shop", repo_url="/srv/shop.git", owner=owner, compose_file="compose.yaml")
    compose_text = "services:\n  web: {build: .}\n  db: {image: 'postgres:16', volumes: [data:/data]}\nvolumes: {data: {}}\n"
    live = Deployment.objects.create(
        app=app, ref="main", state=Deployment.State.SUCCEEDED, commit_sha="b" * 40, compose_text=compose_text,
        image="switchyard/shop/web:bbbbbbbbbbbb", colour="blue",
        containers=[Container(id="w1", name="sy-shop-1_web-1", ip="", port=8000)],
        pinned_images={"db": {"reference": "postgres:16", "pinned": f"postgres@{DIGEST}", "image_id": "sha256:9"}})
    live.services = [ServiceRelease(name="db", role="stateful", image=f"postgres@{DIGEST}", definition="d1",
                                    image_id="sha256:9", started_by=live.pk,
                                    containers=(Container(id="d1", name=f"sy-shop-{live.pk}_db-1", ip="", port=0),))]
    live.save(update_fields=["services"])
    App.objects.filter(pk=app.pk).update(live_deployment=live, live_colour="blue")
    return live


def test_person_sees_the_digest_an_image_service_runs(transactional_db, page, django_user_model):
    eve = django_user_model.objects.create_user("eve", password="pw-eve-45678")
    live = _an_app_with_a_pulled_db(eve)
    log_in(page, "eve", "pw-eve-45678")

    page.goto("/apps/shop/")
    db = page.locator("#services tr[data-service='db']")
    expect(db.locator(".image")).to_contain_text(f"postgres@{DIGEST}")
    expect(db.locator(".pulled-as")).to_have_text("pulled as postgres:16")
    page.locator("#services").screenshot(path=str(SCREENSHOTS / "compose_image_service_digest.png"))

    page.goto(f"/deployments/{live.pk}/")
    expect(page.locator("#deployment-images")).to_contain_text(f"db postgres@{DIGEST} pulled as postgres:16")


def test_person_sets_registry_credentials_and_the_password_is_never_shown_back(transactional_db, page,
                                                                               django_user_model):
    eve = django_user_model.objects.create_user("eve", password="pw-eve-45678")
    _an_app_with_a_pulled_db(eve)
    log_in(page, "eve", "pw-eve-45678")

    page.goto("/apps/shop/settings/")
    form = page.locator("#registry-form")
    form.locator("#id_registry_host").fill("Registry.Example.com:5000")
    form.locator("#id_registry_username").fill("deploy-bot")
    form.locator("#id_registry_password").fill("s3cret-Token-value")
    form.locator("button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("Registry credentials for registry.example.com:5000 saved.")
    app = App.objects.get(name="shop")
    assert (app.registry_host, app.registry_username, app.registry_password) == (
        "registry.example.com:5000", "deploy-bot", "s3cret-Token-value")
    assert "s3cret" not in app.encrypted_registry_password
    assert "s3cret-Token-value" not in page.content()
    expect(page.locator("#id_registry_password")).to_have_attribute(
        "placeholder", "set: leave empty to keep it")
    page.locator("#registry").screenshot(path=str(SCREENSHOTS / "registry_credentials.png"))

    form.locator("#id_registry_host").fill("other.example.com")  # a new host: the old password is not for it
    form.locator("button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("a password or token for this registry")
    app.refresh_from_db()
    assert app.registry_host == "registry.example.com:5000" and app.registry_password == "s3cret-Token-value"

"""End to end in real headless Chromium (Debian's), driven by Playwright: a person logs in,
creates an app, deploys it twice, flips zero-downtime, and rolls back with Redeploy.

Screenshots of the apps page, the app page and a finished deployment page are saved in
tests/artifacts/screenshots/ (see README, "What it looks like")."""
import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from django.utils import timezone

from deployments import crypto
from deployments.haproxy import tls
from deployments.models import App, Certificate, Deployment
from tests.support.tls import PrivateCA

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "2"]\n'  # long enough to watch the stepper move


@pytest.fixture
def page(panel_server):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are plain synchronous code between browser steps.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=panel_server, viewport={"width": 1280, "height": 900})
        yield page
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def _deploy_and_watch(page: Page) -> int:
    """Click Deploy on the app page; watch the stepper run and the log stream to success."""
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url("**/deployments/*/")
    expect(page.locator("#stepper li.active")).to_have_count(1, timeout=20000)  # caught mid-flight
    expect(page.locator("#state-badge")).to_have_class("badge succeeded", timeout=60000)
    expect(page.locator("#stepper li.done")).to_have_count(6)
    expect(page.locator("#log .line").filter(has_text="==> build")).to_have_count(1)
    expect(page.locator("#log .line").last).to_contain_text("Deployment succeeded")
    expect(page.locator("#log-status")).to_have_text("complete")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_person_creates_deploys_toggles_and_rolls_back_in_the_browser(stack, app_repo, page, django_user_model):
    # The repository is on this machine, which only superusers (and the CLI) may use.
    django_user_model.objects.create_superuser("ada", password="correct horse battery")
    app_repo.commit_version("v1", extra_dockerfile=SLOW_BUILD)

    page.goto("/")
    expect(page).to_have_url("/login/?next=/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()

    page.fill("#id_name", "hello")
    page.fill("#id_repo_url", app_repo.url)
    page.fill("#id_domains", "hello.example.com")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="hello")).to_be_visible()

    first = _deploy_and_watch(page)
    assert stack.get("hello.example.com") == (200, "v1")
    page.screenshot(path=str(SCREENSHOTS / "deployment.png"), full_page=True)

    app_repo.commit_version("v2", extra_dockerfile=SLOW_BUILD)
    App.objects.filter(name="hello").update(watch_window=4)  # as the settings form would
    page.goto("/apps/hello/")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator('#stepper li[data-phase="watch"].active .time')).to_contain_text("s left", timeout=60000)
    expect(page.get_by_role("button", name="Promote now")).to_be_visible()
    expect(page.locator("#state-badge")).to_have_class("badge succeeded", timeout=60000)
    expect(page.locator("#stepper li.done")).to_have_count(7)
    expect(page.locator("#traffic")).to_contain_text("requests")
    assert stack.get("hello.example.com") == (200, "v2")

    page.goto("/apps/hello/")
    page.locator("#zero-downtime-form label.switch").click()
    expect(page.locator("#zero-downtime-form strong")).to_have_text("Zero-downtime deploys off")
    assert App.objects.get(name="hello").zero_downtime is False
    page.locator("#zero-downtime-form label.switch").click()
    expect(page.locator("#zero-downtime-form strong")).to_have_text("Zero-downtime deploys on")
    assert App.objects.get(name="hello").zero_downtime is True

    page.locator("#history tr", has=page.locator(f'a[href="/deployments/{first}/"]')).get_by_role(
        "button", name="Redeploy").click()
    page.wait_for_url("**/deployments/*/")
    expect(page.locator("#state-badge")).to_have_class("badge succeeded", timeout=60000)
    expect(page.locator('#stepper li[data-phase="build"]')).to_have_class("skipped")
    assert stack.get("hello.example.com") == (200, "v1")
    assert Deployment.objects.filter(app__name="hello", redeploy_of_id=first, state="succeeded").count() == 1

    page.goto("/apps/hello/")
    expect(page.locator("#output .line").first).to_contain_text("serving v1")
    secret = App.objects.get(name="hello").webhook_secret
    assert secret not in page.content()  # only on request
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#webhook-secret")).to_have_text(secret)
    page.screenshot(path=str(SCREENSHOTS / "app.png"), full_page=True)
    page.goto("/")
    expect(page.locator("td .badge.UP")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "apps.png"), full_page=True)


def _log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()


def test_person_sees_and_changes_limits_and_reads_the_audit_log(transactional_db, page, django_user_model, app_repo):
    ben = django_user_model.objects.create_user("ben", password="pw-ben-4567")
    app_repo.commit_version("v1")
    App.objects.create(name="shop", repo_url=app_repo.url, owner=ben)  # as a superuser or the CLI made it
    _log_in(page, "ben", "pw-ben-4567")

    page.fill("#id_name", "mine")
    page.fill("#id_repo_url", app_repo.url)
    page.get_by_role("button", name="Create app").click()
    expect(page.locator(".errorlist")).to_contain_text("only the CLI or a superuser")
    assert not App.objects.filter(name="mine").exists()

    page.goto("/apps/shop/")
    expect(page.locator("#limits")).to_contain_text("512 MiB memory · 1 CPU · 256 processes · capabilities: none")
    page.fill("#id_capabilities", "SYS_ADMIN")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-form .errorlist")).to_contain_text("not a capability an app may have")
    page.fill("#id_memory_limit_mb", "256")
    page.fill("#id_cpu_limit", "0.5")
    page.fill("#id_pids_limit", "128")
    page.fill("#id_capabilities", "NET_BIND_SERVICE")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator("#limits")).to_contain_text("256 MiB memory · 0.5 CPU · 128 processes · "
                                                    "capabilities: NET_BIND_SERVICE")
    expect(page.locator("#audit tbody tr").first).to_contain_text("memory_limit_mb=256")
    expect(page.locator("#audit tbody tr").first).to_contain_text("ben")
    page.locator("#limits").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "app_limits_activity.png"), full_page=True)

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    expect(page.locator("table.audit tbody tr").first).to_contain_text("app.settings")
    page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)


def test_a_100000_line_log_streams_in_without_freezing_the_page(transactional_db, page, django_user_model):
    from deployments.models import LogLine

    owner = django_user_model.objects.create_user("bea", password="pw-bea-123")
    app = App.objects.create(name="big", repo_url="/srv/big.git", owner=owner)
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.FAILED, phase="build",
                                           error="build failed: too much output")
    LogLine.objects.bulk_create((LogLine(deployment=deployment, seq=i, text=f"\x1b[32mstep {i}\x1b[0m compiling")
                                 for i in range(1, 100001)), batch_size=5000)
    # Chromium reports every task longer than 50 ms; the page must never block for long.
    page.add_init_script("""window.__longest = 0;
        new PerformanceObserver((list) => list.getEntries().forEach(
            (e) => { window.__longest = Math.max(window.__longest, e.duration); })).observe({type: "longtask"});""")
    page.goto("/login/")
    page.fill("#id_username", "bea")
    page.fill("#id_password", "pw-bea-123")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/deployments/{deployment.pk}/")

    # Poll a cheap attribute, not 100,000 nodes: the test must not be what blocks the page.
    page.wait_for_function("document.getElementById('log').dataset.renderedSeq === '100000'",
                           polling=500, timeout=90000)
    longest = page.evaluate("window.__longest")
    print(f"100,000 lines: longest task {longest:.0f} ms")

    assert longest < 300, f"the page was blocked for {longest:.0f} ms at once"
    expect(page.locator("#log .line")).to_have_count(100000)
    expect(page.locator("#log .line").last).to_contain_text("step 100000 compiling")
    expect(page.locator("#log .line").first.locator("span[style*='color']")).to_have_count(1)  # ANSI green


def test_person_sees_why_https_failed_and_uploads_their_own_certificate(transactional_db, page, django_user_model,
                                                                          app_repo):
    cy = django_user_model.objects.create_user("cy", password="pw-cy-45678")
    app = App.objects.create(name="shop", repo_url=app_repo.url, owner=cy)
    app.domains.create(hostname="shop.example.test")
    # What the worker leaves after an order the ACME server refused (tests/stack/test_https.py does it for real).
    Certificate.objects.create(app=app, status=Certificate.Status.FAILED, failures=2,
                               error="validation refused: shop.example.test: connection: 127.0.0.2: Connection refused",
                               next_attempt_at=timezone.now() + timedelta(minutes=2))
    _log_in(page, "cy", "pw-cy-45678")

    page.goto("/apps/shop/")
    expect(page.locator("#certificate-status")).to_have_text("failed")
    expect(page.locator("#certificate-error")).to_contain_text("Connection refused")
    expect(page.locator("#certificate-error")).to_contain_text("the app keeps serving meanwhile")

    ca = PrivateCA("cy's CA")
    own, stranger = ca.issue(["shop.example.test"]), ca.issue(["shop.example.test"])
    page.locator("#https summary").click()
    page.fill("#id_certificate", own.chain_pem)
    page.fill("#id_key", stranger.key_pem)
    page.get_by_role("button", name="Upload certificate").click()
    expect(page.locator("#certificate-form .errorlist")).to_contain_text("the key does not belong to the certificate")
    page.fill("#id_certificate", own.chain_pem)
    page.fill("#id_key", own.key_pem)
    page.get_by_role("button", name="Upload certificate").click()
    expect(page.locator(".messages")).to_contain_text("Certificate saved")
    expect(page.locator("#certificate-status")).to_have_text("valid")
    expect(page.locator("#https")).to_contain_text("uploaded")
    expect(page.locator("#https")).to_contain_text("cy's CA")
    page.locator("#https").scroll_into_view_if_needed()
    page.locator("#https").screenshot(path=str(SCREENSHOTS / "https.png"))


def test_person_sees_a_compose_apps_services_and_why_its_web_service_is_recreated(transactional_db, page,
                                                                                    django_user_model):
    from deployments.dockerd.values import Container, ServiceRelease

    dee = django_user_model.objects.create_user("dee", password="pw-dee-45678")
    app = App.objects.create(name="counter", repo_url="/srv/counter.git", owner=dee, compose_file="compose.yaml")
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
    _log_in(page, "dee", "pw-dee-45678")

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


def test_person_turns_on_canary_deploys_watches_the_split_and_aborts(stack, app_repo, page, django_user_model):
    django_user_model.objects.create_superuser("cy", password="pw-cy-456789")
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="canary", replicas=2)
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    _log_in(page, "cy", "pw-cy-456789")

    page.goto("/apps/canary/")
    page.fill("#id_canary_steps", "20, 50, 120")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-form .errorlist")).to_contain_text("must rise, each between 1 and 100")
    page.fill("#id_canary_steps", "20, 50, 100")
    page.fill("#id_canary_step_seconds", "5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#id_canary_steps")).to_have_value("20, 50, 100")
    assert App.objects.get(name="canary").canary_steps == [20, 50, 100]

    app_repo.commit_version("v2")
    with stack.load("canary.localhost", max_seconds=90):
        page.get_by_role("button", name="Deploy", exact=True).click()
        page.wait_for_url("**/deployments/*/")
        expect(page.locator('#stepper li[data-phase="canary"]')).to_have_class("active", timeout=60000)
        expect(page.locator("#canary-split-text")).to_contain_text("50% of new clients on the new release",
                                                                   timeout=30000)
        expect(page.locator(".canary-step.as-good")).to_have_count(1)
        expect(page.locator(".canary-step").first.locator("svg rect")).to_have_count(4)
        expect(page.get_by_role("button", name="Promote now")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "canary.png"), full_page=True)
        page.get_by_role("button", name="Abort canary").click()
        expect(page.locator("#state-badge")).to_have_class("badge rolled_back", timeout=30000)
    expect(page.locator(".canary-step.aborted")).to_contain_text("aborted by cy")
    expect(page.locator("#canary-split-text")).to_contain_text("0% of new clients on the new release")
    expect(page.get_by_role("button", name="Abort canary")).to_be_hidden()
    assert stack.get("canary.localhost") == (200, "v1")
    page.screenshot(path=str(SCREENSHOTS / "canary_aborted.png"), full_page=True)


def test_person_adds_an_event_target_sees_the_deliveries_and_redelivers(transactional_db, page, django_user_model):
    from deployments.models import EventDelivery

    eli = django_user_model.objects.create_user("eli", password="pw-eli-456789")
    app = App.objects.create(name="ledger", repo_url="/srv/ledger.git", owner=eli)
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.ROLLED_BACK,
                                           error="canary at 5%: 5xx: new 9.8% against old 0.0%")
    EventDelivery.objects.create(app=app, deployment=deployment, kind="webhook", event="rolled_back",
                                 url="https://hooks.example.com/deploys", payload={"event": "deployment.rolled_back"},
                                 state="failed", attempts=6, last_status=502, last_error="HTTP 502")
    _log_in(page, "eli", "pw-eli-456789")

    page.goto("/apps/ledger/")
    form = page.locator("#notification-form")
    form.locator("#id_url").fill("ftp://hooks.example.com/deploys")
    form.get_by_role("button", name="Add target").click()
    expect(page.locator(".messages")).to_contain_text("is not an http(s) URL")
    form.locator("#id_url").fill("https://hooks.example.com/deploys")
    form.locator("input[value='cancelled']").uncheck()
    form.get_by_role("button", name="Add target").click()
    targets = page.locator("#notification-targets")
    expect(targets).to_contain_text("https://hooks.example.com/deploys")
    expect(targets).to_contain_text("succeeded, failed, rolled_back")
    target = app.notification_targets.get()
    expect(targets).to_contain_text(target.secret)  # for signing checks at the receiver
    assert target.events == ["succeeded", "failed", "rolled_back"]

    deliveries = page.locator("#event-deliveries")
    expect(deliveries).to_contain_text("6 attempts · last 502 · HTTP 502")
    deliveries.get_by_role("button", name="Redeliver").click()
    expect(page.locator(".messages")).to_contain_text("Sending it again")
    assert EventDelivery.objects.filter(redelivery_of__isnull=False).count() == 1  # the worker is trying it
    expect(page.locator("#event-deliveries tbody tr")).to_have_count(2)
    page.locator("#notifications").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "events.png"), full_page=True)


def test_person_sees_that_an_expired_certificate_is_left_out_of_haproxy(transactional_db, page, django_user_model,
                                                                         app_repo):
    dee = django_user_model.objects.create_user("dee", password="pw-dee-456789")
    app = App.objects.create(name="kiosk", repo_url=app_repo.url, owner=dee)
    app.domains.create(hostname="kiosk.example.test")
    # Valid when it was uploaded; it ran out since (tests/stack/test_certificate_safety.py restarts HAProxy with one).
    expired = PrivateCA("dee's CA").issue(["kiosk.example.test"], ago=timedelta(days=40), days=30)
    facts = tls.facts(expired.chain_pem)
    Certificate.objects.create(app=app, source=Certificate.Source.UPLOADED, status=Certificate.Status.VALID,
                               domains=list(facts.names), chain_pem=expired.chain_pem,
                               encrypted_key=crypto.encrypt(expired.key_pem), issuer=facts.issuer,
                               not_before=facts.not_before, not_after=facts.not_after)
    _log_in(page, "dee", "pw-dee-456789")

    page.goto("/apps/kiosk/")
    expect(page.locator("#certificate-status")).to_have_text("not served")
    expect(page.locator("#certificate-warning")).to_contain_text("This certificate is not served: it expired on")
    expect(page.locator("#certificate-warning")).to_contain_text("upload a valid one or let ACME issue one")
    expect(page.locator("#https")).to_contain_text("plain HTTP until a certificate is issued")
    page.locator("#https").scroll_into_view_if_needed()
    page.locator("#https").screenshot(path=str(SCREENSHOTS / "https_expired.png"))


def test_a_tenant_meets_the_memory_ceiling_and_a_superuser_grants_more_in_admin(transactional_db, page,
                                                                                django_user_model, app_repo):
    from deployments.models import Quota

    fay = django_user_model.objects.create_user("fay", password="pw-fay-456789")
    django_user_model.objects.create_superuser("root", password="pw-root-456789")
    app_repo.commit_version("v1")
    App.objects.create(name="atlas", repo_url=app_repo.url, owner=fay)  # as a superuser or the CLI made it
    _log_in(page, "fay", "pw-fay-456789")

    page.goto("/apps/atlas/")
    page.fill("#id_memory_limit_mb", "65536")
    page.fill("#id_cpu_limit", "64")
    page.get_by_role("button", name="Save settings").click()
    errors = page.locator("#settings-form .errorlist")
    expect(errors.first).to_contain_text("above the most allowed")
    expect(page.locator("#settings-form")).to_contain_text("(SWITCHYARD_MAX_APP_MEMORY_MB)")
    expect(page.locator("#settings-form")).to_contain_text("(SWITCHYARD_MAX_APP_CPUS)")
    page.locator("#id_memory_limit_mb").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "limits_ceiling.png"), full_page=False)
    assert App.objects.get(name="atlas").memory_limit_mb == 512

    page.context.clear_cookies()
    page.goto("/admin/deployments/quota/add/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-456789")
    page.locator("input[type=submit]").click()
    page.select_option("#id_user", label="fay")
    page.fill("#id_app_memory_mb", "4096")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    page.screenshot(path=str(SCREENSHOTS / "admin_quota.png"), full_page=False)
    assert Quota.objects.get(user=fay).app_memory_mb == 4096

    page.context.clear_cookies()
    _log_in(page, "fay", "pw-fay-456789")
    page.goto("/apps/atlas/")
    page.fill("#id_memory_limit_mb", "4096")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator("#limits")).to_contain_text("4096 MiB memory")


def test_person_copies_the_deploy_key_rotates_it_and_sees_a_repository_token_masked(transactional_db, page,
                                                                                      django_user_model, app_repo):
    fay = django_user_model.objects.create_user("fay", password="pw-fay-456789")
    app = App.objects.create(name="vault", repo_url="https://deploy:ghp_T0kenNeverShown@git.example.com/fay/vault.git",
                             owner=fay)
    _log_in(page, "fay", "pw-fay-456789")

    page.goto("/apps/vault/")
    block = page.locator("#deploy-key")
    expect(block).to_contain_text("read-only deploy key")
    expect(page.locator("#deploy-public-key")).to_have_text(app.deploy_public_key)
    assert "ghp_T0kenNeverShown" not in page.content()  # the source line and the settings form: masked
    expect(page.locator("#id_repo_url")).to_have_value("https://deploy:****@git.example.com/fay/vault.git")
    block.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "deploy_key.png"), full_page=False)

    page.get_by_role("button", name="Save settings").click()  # the form sends the masked URL back
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    assert App.objects.get(pk=app.pk).repo_url == app.repo_url  # kept, token and all

    block = page.locator("#deploy-key")
    block.get_by_role("button", name="Rotate key").click()
    expect(page.locator(".messages")).to_contain_text("New deploy key")
    rotated = App.objects.get(pk=app.pk).deploy_public_key
    assert rotated != app.deploy_public_key
    expect(page.locator("#deploy-public-key")).to_have_text(rotated)

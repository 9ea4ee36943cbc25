"""In headless Chromium, the app page: every tab (and its screenshot), a setting refused then saved
from the settings tab, and a 100,000-line log streamed in without freezing the page."""
from django.utils import timezone
from playwright.sync_api import Page, expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS, log_in

TAB_LABELS = {"overview": "Overview", "deployments": "Deployments", "logs": "Logs", "settings": "Settings",
              "environment": "Environment", "webhooks": "Webhooks and events", "members": "Members",
              "activity": "Activity"}


def _an_app_with_history(owner, django_user_model) -> App:
    """An app as it looks after a few weeks: deployments that went each way, variables, a member,
    a webhook delivery, an event target."""
    from deployments.models import EnvVar, Membership, NotificationTarget, WebhookDelivery

    app = App.objects.create(name="orbit", repo_url="https://git.example.com/team/orbit.git", owner=owner,
                             canary_steps=[10, 50, 100])
    app.domains.create(hostname="orbit.example.com")
    done = {phase: {"start": "2026-12-01T10:00:00+00:00", "end": "2026-12-01T10:00:04+00:00"}
            for phase in ("fetch", "build", "start", "verify", "switch", "watch", "drain")}
    for number, state in enumerate(["succeeded", "failed", "rolled_back", "succeeded"], start=1):
        deployment = Deployment.objects.create(
            app=app, ref="main", state=state, commit_sha=f"{number}" * 40, image=f"switchyard/orbit:{number}",
            phase="verify" if state == "failed" else "watch", phase_times=done, trigger="webhook",
            finished_at=timezone.now(), error="" if state == "succeeded" else "health check: 500 from /health")
    App.objects.filter(pk=app.pk).update(live_deployment=deployment, live_colour="blue")
    EnvVar(app=app, key="DATABASE_URL", value="postgres://orbit").save()
    Membership.objects.create(app=app, user=django_user_model.objects.create_user("hal"), role="deployer")
    WebhookDelivery.objects.create(app=app, provider="github", event="push", delivery_id="d-1", status_code=202,
                                   result="deployment queued", deployment=deployment,
                                   push={"kind": "branch", "branch": "main", "sha": "4" * 40, "pusher": "gus"})
    NotificationTarget.objects.create(app=app, kind="webhook", url="https://hooks.example.com/orbit",
                                      events=["succeeded", "failed"])
    return App.objects.get(pk=app.pk)


def _visit_every_tab(page: Page) -> None:
    """Each tab in the bar, in order: its URL, marked current, no sideways scroll at 1280 wide,
    and its screenshot."""
    tabs = page.locator("nav.tabs a")
    expect(tabs).to_have_text(list(TAB_LABELS.values()))
    for slug, label in TAB_LABELS.items():
        tabs.filter(has_text=label).click()
        expect(page).to_have_url("/apps/orbit/" if slug == "overview" else f"/apps/orbit/{slug}/")
        expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text(label)
        expect(page.get_by_role("heading", name="orbit", exact=True)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, f"{slug} overflows at 1280 wide"
        page.screenshot(path=str(SCREENSHOTS / f"app_tab_{slug}.png"), full_page=True)


def _save_a_port_out_of_range_and_a_watch_window(page: Page) -> None:
    """On the settings tab, through its group navigation: refused, shown in its group, nothing
    typed lost."""
    page.get_by_role("link", name="Settings", exact=True).click()
    groups = page.locator("#settings-form fieldset legend")
    expect(groups).to_have_text(["Source", "Health and watch", "Canary", "Limits", "Domains and HTTPS"])
    page.locator(".settings-nav").get_by_role("link", name="Canary").click()
    expect(page.locator("#group-canary")).to_be_in_viewport()
    page.fill("#id_port", "70000")
    page.fill("#id_watch_window", "45")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-errors")).to_contain_text("Port: Ensure this value is less than or equal to 65535")
    expect(page.locator("#group-health .errorlist")).to_contain_text("less than or equal to 65535")
    expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text("Settings")
    expect(page.locator("#id_watch_window")).to_have_value("45")  # nothing typed is lost


def _correct_the_port_and_save(page: Page) -> None:
    page.fill("#id_port", "8080")
    page.get_by_role("button", name="Save settings").click()
    expect(page).to_have_url("/apps/orbit/settings/")
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text("Settings")
    expect(page.locator("#id_watch_window")).to_have_value("45")


def test_person_goes_through_every_tab_and_saves_a_setting_from_the_settings_tab(transactional_db, page,
                                                                                  django_user_model):
    gus = django_user_model.objects.create_user("gus", password="pw-gus-456789")
    app = _an_app_with_history(gus, django_user_model)
    log_in(page, "gus", "pw-gus-456789")
    page.goto("/apps/orbit/")

    _visit_every_tab(page)

    _save_a_port_out_of_range_and_a_watch_window(page)
    assert App.objects.get(pk=app.pk).watch_window == app.watch_window
    page.screenshot(path=str(SCREENSHOTS / "app_tab_settings_refused.png"), full_page=False)
    _correct_the_port_and_save(page)
    assert (App.objects.get(pk=app.pk).port, App.objects.get(pk=app.pk).watch_window) == (8080, 45)

    page.get_by_role("link", name="Environment").click()
    page.fill("#id_key", "FEATURE_FLAGS")
    page.fill("#id_value", "beta")
    page.get_by_role("button", name="Save variable").click()
    expect(page).to_have_url("/apps/orbit/environment/")
    expect(page.locator(".env-row code")).to_have_text(["DATABASE_URL", "FEATURE_FLAGS"])


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

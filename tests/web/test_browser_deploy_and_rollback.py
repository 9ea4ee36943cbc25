"""End to end in real headless Chromium (Debian's), driven by Playwright: a person logs in, creates an
app, deploys it twice, flips zero-downtime, and rolls back with Redeploy. Saves the screenshots of
the apps page, the app page, its logs and a finished deployment page in tests/artifacts/screenshots/
(see README, "What it looks like")."""
from playwright.sync_api import Page, expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS

SLOW_BUILD = 'RUN ["/bin/busybox", "sleep", "2"]\n'  # long enough to watch the stepper move


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


def _log_in_from_the_front_page_and_create_the_app(page: Page, repo_url: str) -> None:
    page.goto("/")
    expect(page).to_have_url("/login/?next=/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()

    page.fill("#id_name", "hello")
    page.fill("#id_repo_url", repo_url)
    page.fill("#id_domains", "hello.example.com")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="hello")).to_be_visible()


def _deploy_and_watch_the_watch_phase(page: Page) -> None:
    """Deploy from the app page; the watch phase counts down with Promote now offered, then ends."""
    page.goto("/apps/hello/")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator('#stepper li[data-phase="watch"].active .time')).to_contain_text("s left", timeout=60000)
    expect(page.get_by_role("button", name="Promote now")).to_be_visible()
    expect(page.locator("#state-badge")).to_have_class("badge succeeded", timeout=60000)
    expect(page.locator("#stepper li.done")).to_have_count(7)
    expect(page.locator("#traffic")).to_contain_text("requests")


def _toggle_zero_downtime_off_and_on(page: Page) -> None:
    page.goto("/apps/hello/settings/")
    page.locator("#zero-downtime-form label.switch").click()
    expect(page.locator("#zero-downtime-form strong")).to_have_text("Zero-downtime deploys off")
    assert App.objects.get(name="hello").zero_downtime is False
    page.locator("#zero-downtime-form label.switch").click()
    expect(page.locator("#zero-downtime-form strong")).to_have_text("Zero-downtime deploys on")
    assert App.objects.get(name="hello").zero_downtime is True
    expect(page).to_have_url("/apps/hello/settings/")


def _redeploy_from_the_deployments_tab(page: Page, deployment_id: int) -> None:
    """Redeploy deployment #`deployment_id` from its row; it succeeds without a build."""
    page.get_by_role("link", name="Deployments", exact=True).click()
    page.locator("#history tr", has=page.locator(f'a[href="/deployments/{deployment_id}/"]')).get_by_role(
        "button", name="Redeploy").click()
    page.wait_for_url("**/deployments/*/")
    expect(page.locator("#state-badge")).to_have_class("badge succeeded", timeout=60000)
    expect(page.locator('#stepper li[data-phase="build"]')).to_have_class("skipped")


def _read_logs_and_webhook_secret_and_take_the_screenshots(page: Page) -> None:
    """The app's logs, its webhook secret shown only on request, the app page and the apps page
    (with their screenshots)."""
    page.goto("/apps/hello/logs/")
    expect(page.locator("#output .line").first).to_contain_text("serving v1")
    page.screenshot(path=str(SCREENSHOTS / "app_logs.png"), full_page=True)
    page.goto("/apps/hello/webhooks/")
    secret = App.objects.get(name="hello").webhook_secret
    assert secret not in page.content()  # only on request
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#webhook-secret")).to_have_text(secret)
    page.goto("/apps/hello/")
    expect(page.locator("#recent-deployments tbody tr")).to_have_count(3)
    page.screenshot(path=str(SCREENSHOTS / "app.png"), full_page=True)
    page.goto("/")
    expect(page.locator("td .badge.UP")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "apps.png"), full_page=True)


def test_person_creates_deploys_toggles_and_rolls_back_in_the_browser(stack, app_repo, page, django_user_model):
    # The repository is on this machine, which only superusers (and the CLI) may use.
    django_user_model.objects.create_superuser("ada", password="correct horse battery")
    app_repo.commit_version("v1", extra_dockerfile=SLOW_BUILD)
    _log_in_from_the_front_page_and_create_the_app(page, app_repo.url)

    first = _deploy_and_watch(page)
    assert stack.get("hello.example.com") == (200, "v1")
    page.screenshot(path=str(SCREENSHOTS / "deployment.png"), full_page=True)

    app_repo.commit_version("v2", extra_dockerfile=SLOW_BUILD)
    App.objects.filter(name="hello").update(watch_window=4)  # as the settings form would
    _deploy_and_watch_the_watch_phase(page)
    assert stack.get("hello.example.com") == (200, "v2")

    _toggle_zero_downtime_off_and_on(page)

    _redeploy_from_the_deployments_tab(page, first)
    assert stack.get("hello.example.com") == (200, "v1")
    assert Deployment.objects.filter(app__name="hello", redeploy_of_id=first, state="succeeded").count() == 1

    _read_logs_and_webhook_secret_and_take_the_screenshots(page)

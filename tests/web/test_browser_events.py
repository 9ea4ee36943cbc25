"""In headless Chromium: a person adds a deploy-event target, sees the deliveries and redelivers one."""
from playwright.sync_api import expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS, log_in


def test_person_adds_an_event_target_sees_the_deliveries_and_redelivers(transactional_db, page, django_user_model):
    from deployments.models import EventDelivery

    eli = django_user_model.objects.create_user("eli", password="pw-eli-456789")
    app = App.objects.create(name="ledger", repo_url="/srv/ledger.git", owner=eli)
    deployment = Deployment.objects.create(app=app, ref="main", state=Deployment.State.ROLLED_BACK,
                                           error="canary at 5%: 5xx: new 9.8% against old 0.0%")
    EventDelivery.objects.create(app=app, deployment=deployment, kind="webhook", event="rolled_back",
                                 url="https://hooks.example.com/deploys", payload={"event": "deployment.rolled_back"},
                                 state="failed", attempts=6, last_status=502, last_error="HTTP 502")
    log_in(page, "eli", "pw-eli-456789")

    page.goto("/apps/ledger/webhooks/")
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
    expect(page).to_have_url("/apps/ledger/webhooks/")
    assert EventDelivery.objects.filter(redelivery_of__isnull=False).count() == 1  # the worker is trying it
    expect(page.locator("#event-deliveries tbody tr")).to_have_count(2)
    page.locator("#notifications").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "events.png"), full_page=True)

"""In headless Chromium: a person turns canary deploys on, watches the split move under load, and aborts."""
from playwright.sync_api import expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS, log_in


def test_person_turns_on_canary_deploys_watches_the_split_and_aborts(stack, app_repo, page, django_user_model):
    django_user_model.objects.create_superuser("cy", password="pw-cy-456789")
    app_repo.commit_version("v1")
    app = stack.create_app(app_repo, name="canary", replicas=2)
    assert stack.deploy_and_wait(app).state == Deployment.State.SUCCEEDED
    log_in(page, "cy", "pw-cy-456789")

    page.goto("/apps/canary/settings/")
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

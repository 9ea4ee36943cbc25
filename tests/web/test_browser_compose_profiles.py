"""In headless Chromium: a Compose app's profiles chosen on its settings tab, a bad name and a
choice that leaves the web service out refused with the reason, then saved (and its screenshot);
the overview says what of the file was read but not done as written."""
from playwright.sync_api import expect

from deployments.models import App, Deployment
from tests.support.browser import SCREENSHOTS, log_in
from tests.support.tenancy import commit_compose, own_app

PROFILED = """
services:
  web: {build: ., profiles: [prod, staging], ports: ["8080:80"]}
  debug: {build: ., profiles: [debug]}
  cache: {build: ., profiles: [cache]}
"""


def _save(page, profiles: str) -> None:
    page.fill("#id_compose_profiles", profiles)
    page.get_by_role("button", name="Save settings").click()


def test_person_chooses_a_compose_apps_profiles_on_the_settings_tab(transactional_db, page, django_user_model,
                                                                    app_repo):
    ivy = django_user_model.objects.create_user("ivy", password="pw-ivy-456789")
    commit_compose(app_repo, PROFILED)
    app = own_app(app_repo, ivy, "shelf", compose_file="compose.yaml", compose_profiles="staging")
    log_in(page, "ivy", "pw-ivy-456789")
    page.goto("/apps/shelf/settings/")
    expect(page.locator("label[for=id_compose_profiles]")).to_contain_text("Compose profiles")
    expect(page.locator("#id_compose_profiles")).to_have_value("staging")

    _save(page, "prod de$bug")
    expect(page.locator("#settings-errors")).to_contain_text("'de$bug' is not a profile name")
    _save(page, "debug")
    expect(page.locator("#settings-errors")).to_contain_text(
        "compose.yaml: services.web.profiles: the web service is only in the profiles prod, staging, and the app's "
        "active profiles are debug")
    assert App.objects.get(pk=app.pk).compose_profiles == "staging"

    _save(page, "prod, debug")
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page.locator("#id_compose_profiles")).to_have_value("prod, debug")
    assert App.objects.get(pk=app.pk).compose_profiles == "prod, debug"
    page.locator("#id_compose_profiles").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "app_settings_compose_profiles.png"), full_page=False)

    Deployment.objects.create(app=app, ref="main", state=Deployment.State.SUCCEEDED, compose_text=PROFILED)
    page.goto("/apps/shelf/")
    expect(page.locator("#compose-notices li")).to_have_text([
        "services: left out by profiles (active: prod, debug): cache (cache)",
        "services.web.ports: nothing is published on the host; the app's domains reach container port 80 through "
        "HAProxy"])
    page.locator("#compose-notices").screenshot(path=str(SCREENSHOTS / "app_overview_compose_notices.png"))

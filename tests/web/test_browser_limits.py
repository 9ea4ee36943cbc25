"""In headless Chromium: a person sees and changes an app's limits, reads the audit log, meets the
memory ceiling, and a superuser grants more with a quota in the admin."""
from playwright.sync_api import Page, expect

from deployments.models import App
from tests.support.browser import SCREENSHOTS, log_in


def test_person_sees_and_changes_limits_and_reads_the_audit_log(transactional_db, page, django_user_model, app_repo):
    ben = django_user_model.objects.create_user("ben", password="pw-ben-4567")
    app_repo.commit_version("v1")
    App.objects.create(name="shop", repo_url=app_repo.url, owner=ben)  # as a superuser or the CLI made it
    log_in(page, "ben", "pw-ben-4567")

    page.fill("#id_name", "mine")
    page.fill("#id_repo_url", app_repo.url)
    page.get_by_role("button", name="Create app").click()
    expect(page.locator(".errorlist")).to_contain_text("only the CLI or a superuser")
    assert not App.objects.filter(name="mine").exists()

    page.goto("/apps/shop/")
    expect(page.locator("#limits")).to_contain_text("512 MiB memory · 1 CPU · 256 processes · capabilities: none")
    page.goto("/apps/shop/settings/")
    page.fill("#id_capabilities", "SYS_ADMIN")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-form .errorlist")).to_contain_text("not a capability an app may have")
    page.fill("#id_memory_limit_mb", "256")
    page.fill("#id_cpu_limit", "0.5")
    page.fill("#id_pids_limit", "128")
    page.fill("#id_capabilities", "NET_BIND_SERVICE")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    expect(page).to_have_url("/apps/shop/settings/")
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("#limits")).to_contain_text("256 MiB memory · 0.5 CPU · 128 processes · "
                                                    "capabilities: NET_BIND_SERVICE")
    page.screenshot(path=str(SCREENSHOTS / "app_limits.png"), full_page=True)
    page.get_by_role("link", name="Activity").click()
    expect(page.locator("#audit tbody tr").first).to_contain_text("memory_limit_mb=256")
    expect(page.locator("#audit tbody tr").first).to_contain_text("ben")
    page.screenshot(path=str(SCREENSHOTS / "app_activity.png"), full_page=True)

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    expect(page.locator("table.audit tbody tr").first).to_contain_text("app.settings")
    page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)


def _ask_for_more_than_the_ceilings(page: Page) -> None:
    """As the tenant: 64 GiB and 64 CPUs refused, the form naming the settings that set the ceilings."""
    page.goto("/apps/atlas/settings/")
    page.fill("#id_memory_limit_mb", "65536")
    page.fill("#id_cpu_limit", "64")
    page.get_by_role("button", name="Save settings").click()
    errors = page.locator("#settings-form .errorlist")
    expect(errors.first).to_contain_text("above the most allowed")
    expect(page.locator("#settings-form")).to_contain_text("(SWITCHYARD_MAX_APP_MEMORY_MB)")
    expect(page.locator("#settings-form")).to_contain_text("(SWITCHYARD_MAX_APP_CPUS)")
    page.locator("#id_memory_limit_mb").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "limits_ceiling.png"), full_page=False)


def _grant_4096_mb_in_the_admin_as_root(page: Page) -> None:
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


def test_a_tenant_meets_the_memory_ceiling_and_a_superuser_grants_more_in_admin(transactional_db, page,
                                                                                django_user_model, app_repo):
    from deployments.models import Quota

    fay = django_user_model.objects.create_user("fay", password="pw-fay-456789")
    django_user_model.objects.create_superuser("root", password="pw-root-456789")
    app_repo.commit_version("v1")
    App.objects.create(name="atlas", repo_url=app_repo.url, owner=fay)  # as a superuser or the CLI made it
    log_in(page, "fay", "pw-fay-456789")

    _ask_for_more_than_the_ceilings(page)
    assert App.objects.get(name="atlas").memory_limit_mb == 512

    _grant_4096_mb_in_the_admin_as_root(page)
    assert Quota.objects.get(user=fay).app_memory_mb == 4096

    page.context.clear_cookies()
    log_in(page, "fay", "pw-fay-456789")
    page.goto("/apps/atlas/settings/")
    page.fill("#id_memory_limit_mb", "4096")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved")
    page.goto("/apps/atlas/")
    expect(page.locator("#limits")).to_contain_text("4096 MiB memory")

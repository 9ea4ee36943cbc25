"""In headless Chromium: a superuser adds a host on the hosts page, starts its agent with the
command the page showed once, sees it turn healthy with its Docker and HAProxy, and revokes it."""
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from deployments.models import Host
from tests.support.browser import SCREENSHOTS, log_in


def test_superuser_adds_a_host_starts_its_agent_sees_it_healthy_and_revokes_it(fleet, rig, page, celery_worker):
    get_user_model().objects.create_superuser("root", password="pw-root-456789")
    log_in(page, "root", "pw-root-456789")
    host = rig.hosts[0]

    command = _add_in_the_form(page, host)
    fleet.start(fleet.remember(host, command))
    row = page.locator(f"#host-{host.name}")
    expect(row).to_contain_text("new")
    _until_healthy(page, row, lambda: f"{fleet.logs(host.name)}\n--- workers:\n{celery_worker.log_path.read_text()[-4000:]}")
    expect(row).to_contain_text("20.10")
    expect(row).to_contain_text("2.6.")
    expect(row).to_contain_text("zone=a")
    expect(row).to_contain_text(" s ago")
    expect(page.locator("#agent-command")).to_have_count(0)  # the credential is shown once only
    page.screenshot(path=str(SCREENSHOTS / "hosts.png"), full_page=True)

    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("credential revoked")
    expect(row.locator(".badge")).to_have_text("revoked")
    assert Host.objects.get(name=host.name).revoked_at is not None


def _add_in_the_form(page, host) -> str:
    """A bad address first (refused, nothing stored), then the host; the command the page shows."""
    page.get_by_role("link", name="Hosts").click()
    expect(page.locator("#hosts")).to_contain_text("No hosts: everything runs on this machine.")
    form = page.locator("#host-form")
    form.locator("#id_name").fill(host.name)
    form.locator("#id_address").fill("the first one")
    form.locator("#id_labels").fill("zone=a")
    form.get_by_role("button", name="Add host").click()
    expect(page.locator("#error-address")).to_contain_text("is not an IP address")
    assert not Host.objects.exists()
    form.locator("#id_address").fill(host.address)
    form.get_by_role("button", name="Add host").click()
    command = page.locator("#agent-command code").inner_text()
    assert command.endswith(f"make agent HOST={host.name}") and "SWITCHYARD_AGENT_BROKER=" in command
    page.screenshot(path=str(SCREENSHOTS / "host_added.png"), full_page=True)
    return command


def _until_healthy(page, row, logs) -> None:
    """The control worker's beat judges the host; the page shows what it stored."""
    def healthy_on_a_fresh_look() -> None:
        page.goto("/hosts/")  # not a reload: that would post the form again
        expect(row.locator(".badge")).to_have_text("healthy", timeout=1000)
    try:
        _retry(healthy_on_a_fresh_look, 30)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{logs()}") from None


def _retry(attempt, times: int) -> None:
    for _ in range(times - 1):
        try:
            return attempt()
        except AssertionError:
            continue
    attempt()

"""Debian's Chromium driven by Playwright for the browser tests (tests/web/test_browser_*.py): a
page on the panel, logging in, and where the screenshots go (README, "What it looks like")."""
import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect, sync_playwright

from tests.support.eventually import eventually

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Chromium in a network namespace of its own, the panel relayed in: the host's network changes
# (the other tests' bridges and veths) do not abort its navigations (see the script).
CHROMIUM_OWN_NETWORK = str(Path(__file__).with_name("chromium-own-network"))
# Without the background-networking flags Chromium keeps dialling Google on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def panel_page(panel_server: str) -> Iterator[Page]:
    """A 1280×900 page of a fresh headless Chromium, its relative URLs on the panel."""
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are plain synchronous code between browser steps.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with _relayed(panel_server) as browser_env, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_OWN_NETWORK, args=CHROMIUM_ARGS, env=browser_env)
        yield browser.new_page(base_url=panel_server, viewport={"width": 1280, "height": 900})
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@contextmanager
def _relayed(panel_server: str) -> Iterator[dict[str, str]]:
    """The panel's port relayed to a Unix socket, which Chromium's own network namespace reaches
    (chromium-own-network); the environment that wrapper reads."""
    port = str(urlsplit(panel_server).port)
    with tempfile.TemporaryDirectory(prefix="sy-browser-") as directory:
        socket_path = str(Path(directory) / "panel.sock")
        relay = subprocess.Popen(["socat", f"UNIX-LISTEN:{socket_path},fork", f"TCP:127.0.0.1:{port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            eventually(lambda: Path(socket_path).exists() or relay.poll() is not None, "the panel's relay listening", 10)
            assert relay.poll() is None, "socat, the relay to the panel, exited"
            yield {**os.environ, "CHROMIUM": CHROMIUM, "PANEL_PORT": port, "PANEL_SOCKET": socket_path}
        finally:
            with contextlib.suppress(ProcessLookupError):  # exited already: the assertion above says so
                os.killpg(relay.pid, signal.SIGTERM)  # socat and the children it forked per connection
            relay.wait(timeout=10)


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()


"""Deploy event targets: a bad URL is refused with the reason before it is saved, and a target on a
private address is never sent to (receivers are local HTTP servers: tests/support/receiver.py)."""
import pytest

from deployments.application import events as event_targets
from deployments.application.errors import InvalidInput
from deployments.models import App
from deployments.outgoing import pinned_http
from tests.support.receiver import Receiver
from tests.support.stack import TEST_ACTOR


@pytest.mark.parametrize("url, message", [
    ("ftp://hooks.example.com/x", "is not an http(s) URL"),
    ("http://[x/hook", "is not an http(s) URL"),
    ("https://user:pw@hooks.example.com/x", "put no user or password in the URL"),
    ("https://hooks.example.com/a b", "spaces or characters outside ASCII"),
    ("https://hooks.example.com:99999/x", "is not an http(s) URL"),
    ("", "a webhook target needs the URL"),
])
def test_a_bad_target_is_refused_with_the_reason(db, url, message):
    app = App.objects.create(name="shop", repo_url="/srv/shop.git")
    with pytest.raises(InvalidInput) as refused:
        event_targets.add_target(app, kind="webhook", url=url, actor=TEST_ACTOR)
    assert message in str(refused.value)
    assert not app.notification_targets.exists()


def test_a_target_on_a_private_address_is_not_sent_to(settings):
    settings.SWITCHYARD = {**settings.SWITCHYARD, "EVENTS_ALLOW_PRIVATE": False}
    with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        for url in (f"http://127.0.0.1:{port}/admin", f"http://localhost:{port}/", "http://10.0.0.5/hook",
                    f"http://[::1]:{port}/"):
            with pytest.raises(pinned_http.Unreachable, match="not a public address"):
                pinned_http.post(url, b"{}", {})
        assert receiver.requests == []
    with pytest.raises(pinned_http.Unreachable, match="does not resolve"):
        pinned_http.post("http://no-such-host.invalid/hook", b"{}", {})

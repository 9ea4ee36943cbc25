"""The panel against the usual attacks: guessed passwords, weak passwords, cookies sent over plain
HTTP, a Host header nobody checks."""
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

ROOT = Path(__file__).resolve().parents[2]
LOGIN_PAGES = ["/login/", "/admin/login/"]
RIGHT = "right horse battery staple"


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_superuser("ada", "", RIGHT)  # staff, so the admin lets her in too


def _log_in(client, path: str, password: str, address: str = "203.0.113.7", username: str = "ada"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_five_wrong_passwords_answer_429_and_then_even_the_right_one_is_refused(client, ada, path):
    statuses = [_log_in(client, path, f"guess {n}").status_code for n in range(5)]
    right = _log_in(client, path, RIGHT)

    assert statuses == [200, 200, 200, 200, 429]
    assert right.status_code == 429 and not _logged_in(client)
    assert "Too many failed logins" in right.content.decode()
    assert "0:15:00" in right.content.decode()  # the cool-off


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_a_lock_out_holds_one_username_from_one_address_only(client, ada, django_user_model, path):
    django_user_model.objects.create_superuser("bob", "", RIGHT)
    for n in range(5):
        _log_in(client, path, f"guess {n}")

    assert _log_in(client, path, RIGHT, address="198.51.100.20").status_code == 302  # the real ada, elsewhere
    client.logout()
    assert _log_in(client, path, RIGHT, username="bob").status_code == 302  # someone else at the same address


def test_the_right_password_works_again_after_the_cool_off(client, ada):
    for n in range(5):
        _log_in(client, "/login/", f"guess {n}")
    assert _log_in(client, "/login/", RIGHT).status_code == 429

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))

    assert _log_in(client, "/login/", RIGHT).status_code == 302 and _logged_in(client)


def test_a_successful_login_clears_earlier_failures(client, ada):
    for n in range(4):
        _log_in(client, "/login/", f"guess {n}")
    assert _log_in(client, "/login/", RIGHT).status_code == 302
    client.logout()

    statuses = [_log_in(client, "/login/", f"again {n}").status_code for n in range(4)]

    assert statuses == [200, 200, 200, 200]


def test_cookies_are_secure_when_the_proxy_says_https(client, ada):
    https = {"X-Forwarded-Proto": "https"}
    client.get("/login/", headers=https)

    response = client.post("/login/", {"username": "ada", "password": RIGHT}, headers=https)

    session, csrf = response.cookies["sessionid"], response.cookies["csrftoken"]
    assert response.status_code == 302
    assert session["secure"] is True and csrf["secure"] is True
    assert session["httponly"] is True and session["samesite"] == "Lax" and csrf["samesite"] == "Lax"


def test_cookies_stay_usable_over_plain_http_on_loopback(client, ada):
    response = client.post("/login/", {"username": "ada", "password": RIGHT})

    assert response.status_code == 302
    assert not response.cookies["sessionid"]["secure"] and not response.cookies["csrftoken"]["secure"]
    assert client.get("/").status_code == 200  # the cookie came back: still logged in


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.support.settings", **env}
    for name in [name for name, value in env.items() if value is None]:
        environment.pop(name)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
@pytest.mark.parametrize("password, reason", [
    ("admin", "at least 12 characters"),
    ("password1234", "too common"),
    ("830274619253", "entirely numeric"),
])
def test_ensure_admin_refuses_a_weak_password_and_says_what_to_fix(transactional_db, password, reason):
    result = _manage("ensure_admin", SWITCHYARD_ADMIN_PASSWORD=password)

    assert result.returncode != 0
    assert "SWITCHYARD_ADMIN_PASSWORD is too weak" in result.stderr and reason in result.stderr
    assert not get_user_model().objects.exists()


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
def test_ensure_admin_accepts_a_strong_password(transactional_db, client):
    result = _manage("ensure_admin", SWITCHYARD_ADMIN_PASSWORD=RIGHT)

    assert result.returncode == 0, result.stderr
    assert get_user_model().objects.get().is_superuser
    assert client.post("/login/", {"username": "admin", "password": RIGHT}).status_code == 302


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
@pytest.mark.parametrize("bind, hosts", [
    ("0.0.0.0:8000", None),
    ("0.0.0.0:8000", "*"),
    ("[::]:8000", None),
    ("192.0.2.10:8000", "panel.example.com,*"),
    ("panel.internal:8000", None),
])
def test_start_up_refuses_any_host_when_the_panel_binds_beyond_loopback(bind, hosts):
    result = _manage("check", SWITCHYARD_PANEL_BIND=bind, SWITCHYARD_ALLOWED_HOSTS=hosts)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SWITCHYARD_ALLOWED_HOSTS" in result.stderr
    assert "e.g. SWITCHYARD_ALLOWED_HOSTS=panel.example.com" in result.stderr


@pytest.mark.slow  # starts a Python process of its own: Django's start-up takes seconds
@pytest.mark.parametrize("bind, hosts", [
    ("127.0.0.1:8000", None),
    ("[::1]:8000", None),
    ("localhost:8000", "*"),
    ("0.0.0.0:8000", "panel.example.com"),
])
def test_start_up_accepts_loopback_or_listed_hosts(bind, hosts):
    result = _manage("check", SWITCHYARD_PANEL_BIND=bind, SWITCHYARD_ALLOWED_HOSTS=hosts)

    assert result.returncode == 0, result.stderr

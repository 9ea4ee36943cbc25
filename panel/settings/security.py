"""The panel's defences Django's settings express: login throttling, password rules, cookies, HSTS,
and the Host headers it answers (`*` refused beyond loopback)."""
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from panel.env import env_int
from panel.settings.core import ALLOWED_HOSTS
from panel.settings.switchyard import SWITCHYARD, is_loopback


# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair gets 429 (even with the right password) until the cool-off has passed. The pair,
# not the username alone, so nobody can lock the real admin out from elsewhere; not the address alone,
# so people behind one NAT or proxy do not lock each other out. The address is REMOTE_ADDR: behind a
# proxy on this machine uvicorn already puts the client's address there (it trusts X-Forwarded-For
# from FORWARDED_ALLOW_IPS, default 127.0.0.1); Django itself never reads the header, so a client
# talking to the panel directly cannot pick its own address.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("SWITCHYARD_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SWITCHYARD_LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=24 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "panel.middleware.remote_addr"
AXES_VERBOSE = False  # no banner on every manage.py command; failures are still logged
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Cookies: Secure is decided per request (panel.middleware.SecureCookiesMiddleware), because one
# panel is reached both over http://127.0.0.1 and over HTTPS through a proxy. The proxy must set
# X-Forwarded-Proto; a client forging it only makes its own cookies stricter.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Strict-Transport-Security on every answer the panel gives over HTTPS (its own domain through
# HAProxy, or any proxy that sets X-Forwarded-Proto): a browser that saw it never again sends the
# login form in clear. Over plain HTTP it is not sent (browsers would ignore it there).
SECURE_HSTS_SECONDS = env_int("SWITCHYARD_PANEL_HSTS_SECONDS", 31536000, minimum=0, maximum=2 * 31536000)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"


def _refuse_any_host_beyond_loopback(hosts: list[str], bind_host: str) -> None:
    """`*` answers any Host header: harmless on loopback, an open door (cache poisoning, password
    reset links, DNS rebinding) on an address others can reach."""
    if "*" not in hosts or is_loopback(bind_host):
        return
    raise ImproperlyConfigured(
        f"SWITCHYARD_ALLOWED_HOSTS is '*' (the default) while the panel binds {bind_host} "
        "(SWITCHYARD_PANEL_BIND), beyond loopback; list the host names the panel is reached by, "
        "e.g. SWITCHYARD_ALLOWED_HOSTS=panel.example.com,203.0.113.7")


_refuse_any_host_beyond_loopback(ALLOWED_HOSTS, SWITCHYARD["PANEL_BIND"][0])
# The panel's own domain (served through HAProxy) is a host it answers (with `*` it already is).
if SWITCHYARD["PANEL_DOMAIN"] and "*" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(SWITCHYARD["PANEL_DOMAIN"])

"""Which pages may open a WebSocket to the panel: the panel's own, as Django's CSRF check decides
for forms. A browser sends the session cookie with any site's WebSocket handshake (cross-site
WebSocket hijacking), so the Origin header is what tells the panel's pages from a stranger's.

channels' AllowedHostsOriginValidator compares the Origin with ALLOWED_HOSTS, which lets every
origin through when ALLOWED_HOSTS is '*' (the default on loopback). Here the Origin must be the
handshake's own scheme and Host, or one of CSRF_TRUSTED_ORIGINS; and the Host must be allowed.
A handshake without an Origin is refused: every browser sends one, and nothing else of
Switchyard's uses WebSockets."""
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


class SameOriginValidator:
    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive, send) -> None:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier.as_asgi()(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", [])}
    origin, host = headers.get("origin", ""), headers.get("host", "")
    if not origin or not host or not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        return False
    own_origin = f"{'https' if _is_secure(scope, headers) else 'http'}://{host}"
    return origin == own_origin or _trusted(origin)


def _is_secure(scope: dict, headers: dict[str, str]) -> bool:
    """As HttpRequest.is_secure(): the proxy's header (SECURE_PROXY_SSL_HEADER) when it is sent."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        sent = headers.get(meta_name.removeprefix("HTTP_").replace("_", "-").lower())
        if sent is not None:
            return sent.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "wss"


def _trusted(origin: str) -> bool:
    """In CSRF_TRUSTED_ORIGINS, exactly or by a wildcard subdomain (https://*.example.com), as for CSRF."""
    parsed = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        pattern = urlsplit(trusted)
        if origin == trusted:
            return True
        if "*" in pattern.netloc and pattern.scheme == parsed.scheme \
                and is_same_domain(parsed.netloc, pattern.netloc.lstrip("*")):
            return True
    return False

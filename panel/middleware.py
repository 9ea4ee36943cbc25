"""Request-level behaviour that Django's static settings cannot express: cookies marked Secure
per request, the client address login throttling counts, and the chain run in one thread."""
import ipaddress
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SecureCookiesMiddleware:
    """Marks every cookie of a response Secure when its request came over HTTPS.

    Django's SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE are one value for all requests, but the
    same panel is used over plain http://127.0.0.1:8000 (where a Secure cookie would be dropped and
    nobody could log in) and over HTTPS through a proxy (where a cookie without Secure could leak
    over a plain-HTTP request to the same host). So the request decides: request.is_secure() honours
    X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response


class OneThreadMiddleware:
    """Innermost, and sync only: under ASGI Django then runs the whole middleware chain and the
    view in one thread. Without it, each async-capable MiddlewareMixin above (sessions, CSRF,
    auth, messages...) runs each of its hooks with a thread hop of its own: 16 hops for a page
    instead of 6 (tests/web/test_asgi_chain.py). On two busy cores a request the view refuses at
    once (405) took 5 to 9 ms, and 3.3 to 3.8 ms with this. The panel has no async views."""
    sync_capable, async_capable = True, False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


def remote_addr(request: HttpRequest) -> str | None:
    """The client address login throttling counts by: the peer as the ASGI server reports it, and
    for IPv6 its /64 (one host is usually given a whole /64, so counting single addresses would
    give an attacker 2^64 fresh tries).

    Never X-Forwarded-For read here: uvicorn already resolves it for proxies it trusts
    (FORWARDED_ALLOW_IPS), and anyone else could send any value to dodge the lock-out."""
    peer = request.META.get("REMOTE_ADDR") or None
    try:
        address = ipaddress.ip_address(peer.split("%")[0]) if peer else None
    except ValueError:
        return peer
    if address is None:
        return None
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))

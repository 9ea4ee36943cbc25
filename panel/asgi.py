"""ASGI entry point: HTTP through Django, WebSockets through Channels with the same
session authentication as the pages, from the panel's own origin only."""
import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")
django_asgi_app = get_asgi_application()

from deployments.ws_urls import websocket_urlpatterns  # noqa: E402  (needs Django set up)
from panel.websocket_origin import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})

from django.urls import re_path

from deployments import consumers

websocket_urlpatterns = [
    re_path(r"^ws/deployments/(?P<pk>[0-9]{1,18})/$", consumers.DeploymentConsumer.as_asgi()),
    re_path(r"^ws/apps/(?P<name>[^/]+)/output/$", consumers.ContainerOutputConsumer.as_asgi()),
]

from django.urls import path

from deployments import consumers

websocket_urlpatterns = [
    path("ws/deployments/<int:pk>/", consumers.DeploymentConsumer.as_asgi()),
    path("ws/apps/<str:name>/output/", consumers.ContainerOutputConsumer.as_asgi()),
]

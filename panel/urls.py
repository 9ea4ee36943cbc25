from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from deployments import metrics
from deployments.api import api
from deployments.incoming import endpoint

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("hooks/<str:name>/", endpoint.receive, name="webhook"),
    path("api/", api.urls),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("deployments.urls")),
]

from django.urls import path

from deployments import views

urlpatterns = [
    path("", views.app_list, name="apps"),
    path("apps/<str:name>/", views.app_detail, name="app"),
    path("apps/<str:name>/deploy", views.deploy, name="deploy"),
    path("apps/<str:name>/zero-downtime", views.zero_downtime, name="zero_downtime"),
    path("apps/<str:name>/settings", views.app_settings, name="app_settings"),
    path("apps/<str:name>/env", views.env_set, name="env_set"),
    path("apps/<str:name>/env/<str:key>/delete", views.env_delete, name="env_delete"),
    path("apps/<str:name>/members", views.member_set, name="member_set"),
    path("apps/<str:name>/members/<int:user_id>/delete", views.member_remove, name="member_remove"),
    path("apps/<str:name>/delete", views.app_delete, name="app_delete"),
    path("deployments/<int:pk>/", views.deployment_detail, name="deployment"),
    path("deployments/<int:pk>/log", views.deployment_log, name="deployment_log"),
    path("deployments/<int:pk>/cancel", views.cancel, name="cancel"),
    path("deployments/<int:pk>/redeploy", views.redeploy, name="redeploy"),
]

from django.urls import path, register_converter

from deployments import views


class DatabaseId:
    """A positive id that fits a 64-bit integer column; anything longer is a 404, not a crash."""
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseId, "id")

urlpatterns = [
    path("", views.app_list, name="apps"),
    path("apps/<str:name>/", views.app_detail, name="app"),
    path("apps/<str:name>/deploy", views.deploy, name="deploy"),
    path("apps/<str:name>/zero-downtime", views.zero_downtime, name="zero_downtime"),
    path("apps/<str:name>/settings", views.app_settings, name="app_settings"),
    path("apps/<str:name>/env", views.env_set, name="env_set"),
    path("apps/<str:name>/certificate", views.certificate_upload, name="certificate_upload"),
    path("apps/<str:name>/certificate/acme", views.certificate_acme, name="certificate_acme"),
    path("apps/<str:name>/env/<str:key>/delete", views.env_delete, name="env_delete"),
    path("apps/<str:name>/members", views.member_set, name="member_set"),
    path("apps/<str:name>/members/<id:user_id>/delete", views.member_remove, name="member_remove"),
    path("apps/<str:name>/delete", views.app_delete, name="app_delete"),
    path("apps/<str:name>/auto-deploy", views.auto_deploy, name="auto_deploy"),
    path("apps/<str:name>/webhook/secret", views.webhook_secret, name="webhook_secret"),
    path("apps/<str:name>/webhook/rotate", views.webhook_rotate, name="webhook_rotate"),
    path("apps/<str:name>/deploy-key/rotate", views.deploy_key_rotate, name="deploy_key_rotate"),
    path("apps/<str:name>/deliveries/<id:delivery_id>/redeliver", views.redeliver, name="redeliver"),
    path("apps/<str:name>/notifications", views.notification_add, name="notification_add"),
    path("apps/<str:name>/notifications/<id:target_id>/delete", views.notification_delete, name="notification_delete"),
    path("apps/<str:name>/notifications/token", views.commit_status_token, name="commit_status_token"),
    path("apps/<str:name>/events/<id:delivery_id>/redeliver", views.event_redeliver, name="event_redeliver"),
    path("tokens/", views.tokens, name="tokens"),
    path("audit/", views.audit_log, name="audit"),
    path("tokens/<id:token_id>/revoke", views.token_revoke, name="token_revoke"),
    path("deployments/<id:pk>/", views.deployment_detail, name="deployment"),
    path("deployments/<id:pk>/log", views.deployment_log, name="deployment_log"),
    path("deployments/<id:pk>/cancel", views.cancel, name="cancel"),
    path("deployments/<id:pk>/redeploy", views.redeploy, name="redeploy"),
    path("deployments/<id:pk>/promote", views.promote, name="promote"),
    path("deployments/<id:pk>/abort", views.abort, name="abort"),
]

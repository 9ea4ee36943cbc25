from django.urls import path, register_converter

from deployments import app_pages, host_pages, views
from deployments.app_pages import returns_to


class DatabaseId:
    """A positive id that fits a 64-bit integer column; anything longer is a 404, not a crash."""
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseId, "id")
register_converter(app_pages.TabConverter, "apptab")

urlpatterns = [
    path("", views.app_list, name="apps"),
    path("apps/<str:name>/", app_pages.app_tab, name="app"),
    path("apps/<str:name>/<apptab:tab>/", app_pages.app_tab, name="app_tab"),
    path("apps/<str:name>/deploy", returns_to("overview", views.deploy), name="deploy"),
    path("apps/<str:name>/zero-downtime", returns_to("settings", views.zero_downtime), name="zero_downtime"),
    path("apps/<str:name>/settings", returns_to("settings", views.app_settings), name="app_settings"),
    path("apps/<str:name>/env", returns_to("environment", views.env_set), name="env_set"),
    path("apps/<str:name>/certificate", returns_to("settings", views.certificate_upload), name="certificate_upload"),
    path("apps/<str:name>/certificate/acme", returns_to("settings", views.certificate_acme), name="certificate_acme"),
    path("apps/<str:name>/env/<str:key>/delete", returns_to("environment", views.env_delete), name="env_delete"),
    path("apps/<str:name>/members", returns_to("members", views.member_set), name="member_set"),
    path("apps/<str:name>/members/<id:user_id>/delete", returns_to("members", views.member_remove), name="member_remove"),
    path("apps/<str:name>/delete", returns_to("settings", views.app_delete), name="app_delete"),
    path("apps/<str:name>/auto-deploy", returns_to("webhooks", views.auto_deploy), name="auto_deploy"),
    path("apps/<str:name>/webhook/secret", views.webhook_secret, name="webhook_secret"),
    path("apps/<str:name>/webhook/rotate", returns_to("webhooks", views.webhook_rotate), name="webhook_rotate"),
    path("apps/<str:name>/registry", returns_to("settings", views.registry_credentials_save),
         name="registry_credentials"),
    path("apps/<str:name>/deploy-key/rotate", returns_to("settings", views.deploy_key_rotate), name="deploy_key_rotate"),
    path("apps/<str:name>/deliveries/<id:delivery_id>/redeliver", returns_to("webhooks", views.redeliver), name="redeliver"),
    path("apps/<str:name>/notifications", returns_to("webhooks", views.notification_add), name="notification_add"),
    path("apps/<str:name>/notifications/<id:target_id>/delete", returns_to("webhooks", views.notification_delete), name="notification_delete"),
    path("apps/<str:name>/notifications/token", returns_to("webhooks", views.commit_status_token), name="commit_status_token"),
    path("apps/<str:name>/events/<id:delivery_id>/redeliver", returns_to("webhooks", views.event_redeliver), name="event_redeliver"),
    path("tokens/", views.tokens, name="tokens"),
    path("audit/", views.audit_log, name="audit"),
    path("hosts/", host_pages.hosts_page, name="hosts"),
    path("hosts/<str:name>/credential", host_pages.host_credential, name="host_credential"),
    path("hosts/<str:name>/revoke", host_pages.host_revoke, name="host_revoke"),
    path("hosts/<str:name>/remove", host_pages.host_remove, name="host_remove"),
    path("tokens/<id:token_id>/revoke", views.token_revoke, name="token_revoke"),
    path("deployments/<id:pk>/", views.deployment_detail, name="deployment"),
    path("deployments/<id:pk>/log", views.deployment_log, name="deployment_log"),
    path("deployments/<id:pk>/cancel", views.cancel, name="cancel"),
    path("deployments/<id:pk>/redeploy", returns_to("deployments", views.redeploy), name="redeploy"),
    path("deployments/<id:pk>/promote", views.promote, name="promote"),
    path("deployments/<id:pk>/abort", views.abort, name="abort"),
]

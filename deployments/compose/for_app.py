"""An app's compose file read with the app's own settings (web service, profiles, replicas, port) and the
administrator's (allowed runtimes): one place, so that the panel's check, the deployment and
the release page read a file the same way."""
from django.conf import settings

from deployments.compose.file import load
from deployments.compose.profiles import profile_names
from deployments.compose.project import Project


def load_for_app(app, text: str, environment: dict[str, str]) -> Project:
    """`app` is a deployments.models.App (read only: its compose settings)."""
    return load(text, app.web_service, environment, default_replicas=app.replicas, app_port=app.port,
                allowed_runtimes=settings.SWITCHYARD["ALLOWED_RUNTIMES"], profiles=profile_names(app.compose_profiles))

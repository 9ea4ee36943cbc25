"""An app's compose file read with the app's own settings (web service, profiles, replicas, port) and the
administrator's (allowed runtimes): one place, so that the panel's check, the deployment and
the release page read a file the same way."""
from django.conf import settings

from deployments.compose.file import load
from deployments.compose.profiles import profile_names
from deployments.compose.project import Project, Role
from deployments.compose.repofiles import ReadFile


def load_for_app(app, text: str, environment: dict[str, str], read_file: ReadFile | None = None) -> Project:
    """`app` is a deployments.models.App (read only: its compose settings); `read_file` the
    repository's files at the file's commit (without it, what the file names is taken as empty)."""
    return load(text, app.web_service, environment, default_replicas=app.replicas, app_port=app.port,
                read_file=read_file, compose_file=app.compose_file,
                allowed_runtimes=settings.SWITCHYARD["ALLOWED_RUNTIMES"], profiles=profile_names(app.compose_profiles))


def summary(project: Project) -> dict:
    """What the panel shows of a release's file (Deployment.compose_summary): the services by
    role, why the web service is recreated, what was not done as written."""
    return {"roles": {role.value: [s.name for s in project.of_role(role)] for role in Role},
            "recreate": list(project.web.recreate_reasons()), "notices": list(project.notices)}

"""Reset stored health check paths and Host headers that the stricter grammar refuses.

Before it, a path such as /"${SWITCHYARD_SECRET_KEY}" or /a\\b could be saved, and the
config HAProxy was given from it either leaked the panel's environment to the app or was
refused, which kept HAProxy (and `make run`) from starting for every app. The defaults are
what a new app gets; the app's owner can set a valid value again in the settings.
"""
from django.core.exceptions import ValidationError
from django.db import migrations

from deployments.validators import validate_health_path, validate_host_header

DEFAULT_PATH = "/health"
DEFAULT_HOST = ""  # blank: the app's NAME.localhost


def _refused(validator, value) -> bool:
    try:
        validator(value)
    except (ValidationError, TypeError, AttributeError):
        return True
    return False


def repair(apps, schema_editor) -> None:
    App = apps.get_model("deployments", "App")
    Deployment = apps.get_model("deployments", "Deployment")
    for app in App.objects.all():
        changed = {}
        if _refused(validate_health_path, app.health_path):
            changed["health_path"] = DEFAULT_PATH
        if app.health_host and _refused(validate_host_header, app.health_host):
            changed["health_host"] = DEFAULT_HOST
        if changed:
            App.objects.filter(pk=app.pk).update(**changed)
            print(f"\n  app {app.name}: {', '.join(changed)} could not be written safely into HAProxy's config; "
                  f"reset to the default ({', '.join(repr(v) for v in changed.values())})")
    # A deployment that holds a backend is checked the way it was verified (its own copy).
    for deployment in Deployment.objects.select_related("app").iterator():
        if not deployment.health_check:
            continue
        check = dict(deployment.health_check)
        if _refused(validate_health_path, check.get("path")):
            check["path"] = DEFAULT_PATH
        if _refused(validate_host_header, check.get("host")):
            check["host"] = f"{deployment.app.name}.localhost"
        if check != deployment.health_check:
            Deployment.objects.filter(pk=deployment.pk).update(health_check=check)
            print(f"\n  deployment #{deployment.pk} of {deployment.app.name}: its health check was reset "
                  f"to {check['path']} with Host {check['host']}")


class Migration(migrations.Migration):

    dependencies = [
        ("deployments", "0003_confinement_and_audit"),
    ]

    operations = [
        migrations.RunPython(repair, migrations.RunPython.noop),
    ]

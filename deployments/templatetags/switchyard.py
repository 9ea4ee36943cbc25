from django import template
from django.conf import settings

from deployments import masking

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """0.47 → "0.47s", 83 → "1m 23s"; None → "–"."""
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.0f}s"
    return f"{int(value // 60)}m {int(value % 60):02d}s"


@register.filter
def app_url(host: str) -> str:
    """Where a person reaches an app's host through HAProxy (the port unless it is 80)."""
    port = settings.SWITCHYARD["HTTP_BIND"][1]
    return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"


@register.filter
def number(value: float) -> str:
    """1.0 → "1", 0.5 → "0.5": as short as the value allows."""
    return f"{value:g}"


@register.filter
def without_password(url: str) -> str:
    """A repository URL with any password or token in it masked."""
    return masking.without_password(url)


@register.filter
def bound_field(form, name: str):
    """form|bound_field:name: a form's field by a name held in a variable (the settings groups)."""
    return form[name]

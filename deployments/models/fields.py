"""Columns of our own: canary steps as a list of percentages, and lists of typed values (Docker's
containers, a release's services) stored as JSON. Migrations name them by their path
(`deployments.models.ContainerListField`), so the package exports them."""
from django.db import models

from deployments.dockerd.values import Container, ServiceRelease
from deployments.form_fields import PercentStepsFormField


class PercentStepsField(models.JSONField):
    """A list of whole percentages (canary steps); the panel shows and reads it as "5, 25, 50, 100"."""

    def formfield(self, **kwargs):
        return PercentStepsFormField(required=False, label=kwargs.get("label"), help_text=self.help_text)


class _TypedListField(models.JSONField):
    """A list of `item_type` values (with as_dict/from_dict), stored as a JSON list of objects."""
    item_type: type

    def from_db_value(self, value, expression, connection) -> list:
        return [self.item_type.from_dict(item) for item in super().from_db_value(value, expression, connection) or []]

    def get_prep_value(self, value):
        if isinstance(value, list):
            value = [item.as_dict() if isinstance(item, self.item_type) else item for item in value]
        return super().get_prep_value(value)


class ContainerListField(_TypedListField):
    """A list of Container values ({"id", "name", "ip", "port"})."""
    item_type = Container


class ServiceListField(_TypedListField):
    """A release's services besides the web one: a list of ServiceRelease values."""
    item_type = ServiceRelease

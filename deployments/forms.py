"""Forms of the panel. The app's settings come from the schema (application/app_settings.py);
validation that needs the database or git lives in the application layer."""
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from deployments.masking import without_password
from deployments.models import EVENTS, App, Membership, NotificationTarget
from deployments.application.app_settings import ASKED_AT_CREATE, LABELS, SETTINGS_FIELDS, default, help_text


def split_hosts(text: str) -> list[str]:
    return [h for h in text.replace(",", " ").split() if h]


def _create_field(name: str) -> forms.Field:
    """A setting asked when an app is created, as the settings form shows it, with the bounds
    the model declares (checked again by the application layer)."""
    model_field = App._meta.get_field(name)
    bounds = {"min_value": v.limit_value for v in model_field.validators if isinstance(v, MinValueValidator)} | {
        "max_value": v.limit_value for v in model_field.validators if isinstance(v, MaxValueValidator)}
    return model_field.formfield(label=LABELS.get(name), help_text=help_text(name) or "", **bounds)


class NewAppForm(forms.Form):
    name = forms.CharField(max_length=32, help_text="lowercase letters, digits, hyphens")
    domains = forms.CharField(required=False, help_text="space or comma separated")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = {name: _create_field(name) for name in ASKED_AT_CREATE}
        settings["web_service"].required = False  # blank: the model's default service
        self.fields = {"name": self.fields["name"], **settings, "domains": self.fields["domains"]}

    def clean_web_service(self) -> str:
        return self.cleaned_data["web_service"] or default("web_service")


class SettingsForm(forms.ModelForm):
    domains = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text="space or comma separated")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A password or token in the URL is never put into the page; sent back masked, the
        # stored URL is kept (application/apps.py, update_app).
        self.initial["repo_url"] = without_password(self.instance.repo_url)

    class Meta:
        model = App
        fields = list(SETTINGS_FIELDS)
        labels = LABELS


class CertificateForm(forms.Form):
    certificate = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"}),
                                  help_text="PEM: the certificate, then its intermediates")
    key = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN PRIVATE KEY-----"}),
                          help_text="PEM: its private key, unencrypted")


class DeployForm(forms.Form):
    ref = forms.CharField(required=False, max_length=200)


class EnvVarForm(forms.Form):
    key = forms.CharField(max_length=128)
    value = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}))


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class NotificationTargetForm(forms.Form):
    kind = forms.ChoiceField(choices=NotificationTarget.Kind.choices, initial=NotificationTarget.Kind.WEBHOOK)
    url = forms.CharField(label="URL", required=False, max_length=500,
                          help_text="webhook and Slack: where events are POSTed")
    emails = forms.CharField(label="E-mail addresses", required=False, max_length=500,
                             help_text="e-mail: space or comma separated")
    events = forms.MultipleChoiceField(choices=[(e, e.replace("_", " ")) for e in EVENTS], initial=list(EVENTS),
                                       widget=forms.CheckboxSelectMultiple)


def add_service_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    """Show errors from application.errors.InvalidInput on the form, by field where it has one."""
    for name, messages in errors.items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)

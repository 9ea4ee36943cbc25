"""Forms of the panel. Validation that needs the database or git lives in the application layer."""
from django import forms

from deployments.masking import without_password
from deployments.models import EVENTS, App, Membership, NotificationTarget
from deployments.application.app_settings import SETTINGS_FIELDS


def split_hosts(text: str) -> list[str]:
    return [h for h in text.replace(",", " ").split() if h]


class PercentStepsFormField(forms.CharField):
    """Canary steps typed as "5, 25, 50, 100" (spaces or commas); the model validates the list."""
    widget = forms.TextInput(attrs={"placeholder": "off; e.g. 5, 25, 50, 100"})

    def prepare_value(self, value):
        return ", ".join(str(p) for p in value) if isinstance(value, list) else value

    def to_python(self, value):
        words = super().to_python(value).replace(",", " ").split()
        try:
            return [int(word) for word in words]
        except ValueError:
            raise forms.ValidationError("canary steps are whole percentages, e.g. 5, 25, 50, 100") from None


class NewAppForm(forms.Form):
    name = forms.CharField(max_length=32, help_text="lowercase letters, digits, hyphens")
    repo_url = forms.CharField(label="Git repository", max_length=500)
    branch = forms.CharField(initial="main", max_length=200)
    dockerfile = forms.CharField(initial="Dockerfile", max_length=200)
    compose_file = forms.CharField(label="Compose file", required=False, max_length=200,
                                   help_text="a Compose app: the file in the repository; blank: one Dockerfile")
    web_service = forms.CharField(label="Web service", initial="web", max_length=31, required=False,
                                  help_text="the compose service the domains go to")
    port = forms.IntegerField(initial=8000, min_value=1, max_value=65535, help_text="the port the app listens on")
    health_path = forms.CharField(initial="/health", max_length=200)
    domains = forms.CharField(required=False, help_text="space or comma separated")


    def clean_web_service(self) -> str:
        return self.cleaned_data["web_service"] or "web"


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
        labels = {"repo_url": "Git repository", "health_status": "Expected status",
                  "health_timeout": "Probe timeout (s)", "health_deadline": "Health deadline (s)",
                  "health_host": "Health check Host header", "stop_timeout": "Stop timeout (s)",
                  "watch_window": "Watch window (s)", "watch_error_percent": "Roll back above this % of 5xx",
                  "watch_min_requests": "…once this many requests were served", "memory_limit_mb": "Memory (MiB)",
                  "cpu_limit": "CPUs", "pids_limit": "Processes", "capabilities": "Capabilities",
                  "build_timeout": "Build timeout (s)", "https_redirect": "Redirect HTTP to HTTPS",
                  "hsts": "HSTS (Strict-Transport-Security)", "compose_file": "Compose file",
                  "web_service": "Web service", "canary_steps": "Canary steps (%)",
                  "canary_step_seconds": "Canary step (s)", "canary_error_margin": "Canary: more 5xx allowed (points)",
                  "canary_latency_margin": "Canary: slower p95 allowed (%)",
                  "canary_min_requests": "Canary: requests before comparing", "release_command": "Release command"}


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

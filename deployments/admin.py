from django.contrib import admin

from deployments import audit
from deployments.engine import router
from deployments.models import App, Deployment, Domain, Membership


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "repo_url", "branch", "live_colour", "zero_downtime"]
    inlines = [DomainInline, MembershipInline]
    readonly_fields = ["live_colour", "live_deployment", "created_at"]  # only deployments move traffic

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        router.refresh_config()  # domains edited here reach HAProxy's map like the panel's do
        changed = ", ".join(form.changed_data) or "related rows"
        audit.record(audit.Actor.from_request(request, audit.Via.ADMIN), "app.admin_edit", form.instance, changed)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["id", "app", "state", "phase", "ref", "commit_sha", "trigger", "triggered_by", "created_at"]
    list_filter = ["state", "trigger"]
    readonly_fields = [f.name for f in Deployment._meta.fields]

from django.contrib import admin

from deployments import audit, enqueue
from deployments.application import apps
from deployments.models import App, Deployment, Domain, Membership, Quota


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
        enqueue.send_apply_routing()  # domains edited here reach HAProxy's map like the panel's do
        changed = ", ".join(form.changed_data) or "related rows"
        audit.record(_actor(request), "app.admin_edit", form.instance, changed)

    def delete_model(self, request, obj: App) -> None:
        """As the panel deletes: containers, routing, images and cache go too, and it is recorded."""
        apps.delete_app(obj.name, actor=_actor(request))

    def delete_queryset(self, request, queryset) -> None:
        for app in queryset:
            self.delete_model(request, app)


def _actor(request) -> audit.Actor:
    return audit.Actor.from_request(request, audit.Via.ADMIN)


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["id", "app", "state", "phase", "ref", "commit_sha", "trigger", "triggered_by", "created_at"]
    list_filter = ["state", "trigger"]
    readonly_fields = [f.name for f in Deployment._meta.fields]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """What a user may use beyond the settings' ceilings (a blank field: the setting's value)."""
    list_display = ["user", "apps", "memory_mb", "containers", "app_memory_mb", "app_cpus", "app_pids", "app_containers",
                    "app_watch_seconds", "app_canary_seconds"]

    def save_model(self, request, obj: Quota, form, change) -> None:
        super().save_model(request, obj, form, change)
        audit.record(_actor(request), "quota.set", detail=f"{obj.user}: " + ", ".join(
            f"{name}={form.cleaned_data[name]}" for name in form.changed_data))

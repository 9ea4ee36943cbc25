from django.db import migrations, models


def record_live_releases(apps, schema_editor) -> None:
    """A release live before this migration was started with what its app's settings said then:
    the nearest known is what they say now (its containers are counted from its row)."""
    App = apps.get_model("deployments", "App")
    Deployment = apps.get_model("deployments", "Deployment")
    for app in App.objects.exclude(live_deployment=None).select_related("live_deployment"):
        live = app.live_deployment
        count = len(live.containers) + sum(len(service.containers) for service in live.services)
        Deployment.objects.filter(pk=live.pk).update(memory_limit_mb=app.memory_limit_mb,
                                                     container_count=count or app.replicas)


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0016_quota_durations'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='container_count',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='deployment',
            name='memory_limit_mb',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(record_live_releases, migrations.RunPython.noop),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0013_access'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='traffic_baseline',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]

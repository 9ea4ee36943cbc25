from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0017_release_footprint'),
    ]

    operations = [
        migrations.AddField(
            model_name='app',
            name='commit_status_token_host',
            field=models.CharField(blank=True, max_length=255),
        ),
    ]

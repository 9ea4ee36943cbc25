from django.db import migrations, models

import deployments.validators


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0019_app_compose_profiles'),
    ]

    operations = [
        migrations.AddField(
            model_name='app',
            name='registry_host',
            field=models.CharField(blank=True, help_text="a private registry's host (and :port) the app's image services pull from with these credentials", max_length=253, validators=[deployments.validators.validate_registry_host]),
        ),
        migrations.AddField(
            model_name='app',
            name='registry_username',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name='app',
            name='encrypted_registry_password',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='deployment',
            name='pinned_images',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]

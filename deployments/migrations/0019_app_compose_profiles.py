import deployments.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0018_commit_status_token_host'),
    ]

    operations = [
        migrations.AddField(
            model_name='app',
            name='compose_profiles',
            field=models.CharField(blank=True, default='', help_text="the compose file's profiles to deploy, separated by spaces or commas; services without profiles are always deployed", max_length=200, validators=[deployments.validators.validate_compose_profiles]),
        ),
    ]

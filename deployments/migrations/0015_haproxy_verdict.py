from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0014_watchslot'),
    ]

    operations = [
        migrations.AddField(
            model_name='certificate',
            name='haproxy_checked',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name='certificate',
            name='haproxy_refusal',
            field=models.TextField(blank=True),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("units", "0007_merge_any_network_project"),
    ]

    operations = [
        migrations.AddField(
            model_name="dissectionjob",
            name="token_grid",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
    ]

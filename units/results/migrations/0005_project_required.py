"""A row's project is required (separate from the fill: PostgreSQL refuses to alter a table with pending trigger events)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("results", "0004_project")]

    operations = [
        migrations.AlterField(
            model_name="aggregationrun", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="aggregation_runs",
                                    to="projects.project"),
        ),
        migrations.AlterField(
            model_name="exportjob", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="exports",
                                    to="projects.project"),
        ),
        migrations.AlterField(
            model_name="synonymentry", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="synonyms",
                                    to="projects.project"),
        ),
        migrations.AlterField(
            model_name="unitverification", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="verifications",
                                    to="projects.project"),
        ),
    ]

"""A row's project is required (separate from the fill: PostgreSQL refuses to alter a table with pending trigger events)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crowd", "0008_project")]

    operations = [
        migrations.AlterField(
            model_name="hitbatch", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="hit_batches",
                                    to="projects.project"),
        ),
    ]

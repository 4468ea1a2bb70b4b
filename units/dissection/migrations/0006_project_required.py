"""A row's project is required (separate from the fill: PostgreSQL refuses to alter a table with pending trigger events)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("units", "0005_project")]

    operations = [
        migrations.AlterField(
            model_name="dissectionjob", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="jobs",
                                    to="projects.project"),
        ),
        migrations.AlterField(
            model_name="network", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="%(class)ss",
                                    to="projects.project"),
        ),
        migrations.AlterField(
            model_name="probedataset", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="%(class)ss",
                                    to="projects.project"),
        ),
        migrations.AlterField(model_name="network", name="name", field=models.CharField(max_length=100)),
        migrations.AddConstraint(
            model_name="network",
            constraint=models.UniqueConstraint(fields=("project", "name"), name="network_unique_name"),
        ),
        migrations.AlterField(model_name="probedataset", name="name", field=models.CharField(max_length=100)),
        migrations.AddConstraint(
            model_name="probedataset",
            constraint=models.UniqueConstraint(fields=("project", "name"), name="probedataset_unique_name"),
        ),
    ]

"""Every row gets a project: rows made before projects existed go into the Default project."""
import django.db.models.deletion
from django.db import migrations, models

from units.projects.defaults import fill_project

MODELS = [('results', 'aggregationrun'), ('results', 'exportjob'), ('results', 'synonymentry'), ('results', 'unitverification')]


def forwards(apps, schema_editor):
    fill_project(apps, MODELS)


class Migration(migrations.Migration):
    dependencies = [("results", "0003_merge_issue11_issue14v"), ("projects", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.AddField(
            model_name="aggregationrun", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="aggregation_runs",
                                    to="projects.project"),
        ),
        migrations.AddField(
            model_name="exportjob", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="exports",
                                    to="projects.project"),
        ),
        migrations.AddField(
            model_name="synonymentry", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="synonyms",
                                    to="projects.project"),
        ),
        migrations.AddField(
            model_name="unitverification", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="verifications",
                                    to="projects.project"),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]

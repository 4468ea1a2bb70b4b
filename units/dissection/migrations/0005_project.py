"""Every row gets a project: rows made before projects existed go into the Default project."""
import django.db.models.deletion
from django.db import migrations, models

from units.projects.defaults import fill_project

MODELS = [('units', 'dissectionjob'), ('units', 'network'), ('units', 'probedataset')]


def forwards(apps, schema_editor):
    fill_project(apps, MODELS)


class Migration(migrations.Migration):
    dependencies = [("units", "0004_issue11_gold_indexes"), ("projects", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.AddField(
            model_name="dissectionjob", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="jobs",
                                    to="projects.project"),
        ),
        migrations.AddField(
            model_name="network", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="%(class)ss",
                                    to="projects.project"),
        ),
        migrations.AddField(
            model_name="probedataset", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="%(class)ss",
                                    to="projects.project"),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]

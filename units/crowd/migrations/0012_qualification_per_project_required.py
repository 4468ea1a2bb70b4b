"""An attempt's project is required, and the site-wide qualification fields go (moved per project by
0011; separate from that fill: PostgreSQL refuses to alter a table with pending trigger events)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crowd", "0011_qualification_per_project")]

    operations = [
        migrations.AlterField(
            model_name="qualificationattempt", name="project",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                    related_name="qualification_attempts", to="projects.project"),
        ),
        migrations.RemoveField(model_name="annotatorprofile", name="qualified_at"),
        migrations.RemoveField(model_name="annotatorprofile", name="qualified_manually_by"),
        migrations.RemoveField(model_name="crowdsettings", name="qualification_size"),
        migrations.RemoveField(model_name="crowdsettings", name="qualification_pass_fraction"),
        migrations.RemoveField(model_name="crowdsettings", name="qualification_cooldown_minutes"),
    ]

"""Qualification per project: an annotator's qualified status, the test's attempts and settings belong
to a project.

A database with site-wide qualification loses nothing: a qualified annotator (who could take any
project's HITs) is qualified for every project that exists (the Default one for rows from before
projects), attempts without a project go into Default, and the site's test settings become every
existing project's. Gold units belong to their project already, through their dissection job.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from units.projects.defaults import DEFAULT_PROJECT, default_project_id, fill_project


def forwards(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    AnnotatorProfile = apps.get_model("crowd", "AnnotatorProfile")
    Qualification = apps.get_model("crowd", "Qualification")
    CrowdSettings = apps.get_model("crowd", "CrowdSettings")
    QualificationSettings = apps.get_model("crowd", "QualificationSettings")
    fill_project(apps, [("crowd", "QualificationAttempt")])
    qualified = AnnotatorProfile.objects.filter(qualified_at__isnull=False)
    if qualified.exists():
        default_project_id(apps)  # rows from before projects: qualified for Default at least
    project_ids = list(Project.objects.values_list("pk", flat=True))
    Qualification.objects.bulk_create(
        [Qualification(user_id=p.user_id, project_id=project_id, qualified_at=p.qualified_at,
                       qualified_manually_by_id=p.qualified_manually_by_id)
         for p in qualified.only("user_id", "qualified_at", "qualified_manually_by_id") for project_id in project_ids],
        ignore_conflicts=True, batch_size=1000,
    )
    site = CrowdSettings.objects.filter(pk=1).first()
    if site is not None:
        QualificationSettings.objects.bulk_create(
            [QualificationSettings(project_id=project_id, size=site.qualification_size,
                                   pass_fraction=site.qualification_pass_fraction,
                                   cooldown_minutes=site.qualification_cooldown_minutes)
             for project_id in project_ids],
            ignore_conflicts=True,
        )


def backwards(apps, schema_editor):
    """Site-wide again: qualified where qualified for any project (the earliest time), the Default
    project's test settings (or any project's) as the site's."""
    AnnotatorProfile = apps.get_model("crowd", "AnnotatorProfile")
    Qualification = apps.get_model("crowd", "Qualification")
    CrowdSettings = apps.get_model("crowd", "CrowdSettings")
    QualificationSettings = apps.get_model("crowd", "QualificationSettings")
    for q in Qualification.objects.order_by("-qualified_at"):  # the earliest is written last
        AnnotatorProfile.objects.update_or_create(user_id=q.user_id, defaults={
            "qualified_at": q.qualified_at, "qualified_manually_by_id": q.qualified_manually_by_id})
    chosen = (QualificationSettings.objects.filter(project__name=DEFAULT_PROJECT).first()
              or QualificationSettings.objects.order_by("project_id").first())
    if chosen is not None:
        CrowdSettings.objects.update_or_create(pk=1, defaults={
            "qualification_size": chosen.size, "qualification_pass_fraction": chosen.pass_fraction,
            "qualification_cooldown_minutes": chosen.cooldown_minutes})


class Migration(migrations.Migration):
    dependencies = [
        ("crowd", "0010_hitbatch_pool"),
        ("projects", "0003_pool"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QualificationSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("size", models.PositiveSmallIntegerField(default=5)),
                ("pass_fraction", models.FloatField(default=0.6)),
                ("cooldown_minutes", models.PositiveIntegerField(default=60)),
                ("project", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="qualification_settings", to="projects.project")),
            ],
            options={"verbose_name_plural": "qualification settings"},
        ),
        migrations.CreateModel(
            name="Qualification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("qualified_at", models.DateTimeField()),
                ("project", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="qualifications", to="projects.project")),
                ("qualified_manually_by", models.ForeignKey(blank=True, null=True,
                                                            on_delete=django.db.models.deletion.SET_NULL,
                                                            related_name="+", to=settings.AUTH_USER_MODEL)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="qualifications", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["project", "user"],
                "constraints": [models.UniqueConstraint(fields=("user", "project"),
                                                        name="qualification_unique_project")],
            },
        ),
        migrations.AddField(
            model_name="qualificationattempt", name="project",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="qualification_attempts", to="projects.project"),
        ),
        migrations.RunPython(forwards, backwards),
    ]

"""A database from before projects existed migrates with every row kept, all of it in "Default".

The schema is rolled back to the last migrations before projects (the projects app unapplied),
one row is written into every table of the four apps through the historical models, with
requesters (staff, the requesters group) and annotators among the users; after migrating to the
head every row reads back, every row that has a project is in "Default", and Default's members
are exactly the requesters, as requesters. The site-wide qualification of that time (an annotator's
qualified status, the test's settings) is found again as Default's.

A database with projects already, from before qualification was per project, keeps each qualified
annotator qualified for every project (as they were) and the site's test settings in each.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.migration_rows import fill_every_table

BEFORE_PROJECTS = [("units", "0004_issue11_gold_indexes"), ("crowd", "0007_issue11_gold_indexes"),
                   ("results", "0003_merge_issue11_issue14v"), ("sanity", "0001_initial"), ("projects", None)]
APPS = ["units", "crowd", "results", "sanity"]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_rows_from_before_projects_all_land_in_default_whose_members_are_the_requesters(django_user_model):
    from django.contrib.auth.models import Group

    django_user_model.objects.create_user("stella", password="x", is_staff=True)  # staff alone is no requester
    grouped = django_user_model.objects.create_user("greta", password="x")
    grouped.groups.add(Group.objects.create(name="requesters"))
    annotator = django_user_model.objects.create_user("anna", password="x")
    head = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old_apps = _migrate(BEFORE_PROJECTS).loader.project_state([t for t in BEFORE_PROJECTS if t[1]]).apps
        written = fill_every_table(old_apps, annotator, APPS)
        assert len(written) >= 20, sorted(written)
        # Qualification was site-wide: a qualified annotator and the test's settings, to be found per project.
        qualified_at = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
        old_apps.get_model("crowd", "AnnotatorProfile").objects.filter(user_id=annotator.pk).update(
            qualified_at=qualified_at, qualified_manually_by_id=grouped.pk)
        old_apps.get_model("crowd", "CrowdSettings").objects.update_or_create(pk=1, defaults={
            "qualification_size": 7, "qualification_pass_fraction": 0.8, "qualification_cooldown_minutes": 45})

        new_apps = _migrate(head).loader.project_state(head).apps
        Project = new_apps.get_model("projects", "Project")
        default = Project.objects.get(name="Default")
        with_project = 0
        for (label, model_name), expected in written.items():
            model = new_apps.get_model(label, model_name)
            row = model.objects.filter(pk=expected["pk"]).values().first()
            assert row is not None, f"{label}.{model_name} row {expected['pk']} was lost"
            for field, value in expected.items():
                if field != "pk" and field in row:
                    assert row[field] == value, (label, model_name, field)
            if "project_id" in row:
                assert row["project_id"] == default.pk, (label, model_name)
                with_project += 1
        # networks, datasets, jobs, HIT batches, aggregation runs, verifications, exports, synonyms,
        # qualification attempts
        assert with_project == 9, with_project
        Qualification = new_apps.get_model("crowd", "Qualification")
        assert list(Qualification.objects.values_list("user_id", "project_id", "qualified_at",
                                                      "qualified_manually_by_id")) == [
            (annotator.pk, default.pk, qualified_at, grouped.pk)]
        settings = new_apps.get_model("crowd", "QualificationSettings").objects.get(project=default)
        assert (settings.size, settings.pass_fraction, settings.cooldown_minutes) == (7, 0.8, 45)
        Membership = new_apps.get_model("projects", "Membership")
        assert sorted(Membership.objects.filter(project=default).values_list("user__username", "role")) == [
            ("greta", "requester"), ("stella", "requester")]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_a_database_without_rows_gets_no_default_project():
    head = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate(BEFORE_PROJECTS)
        new_apps = _migrate(head).loader.project_state(head).apps
        assert not new_apps.get_model("projects", "Project").objects.exists()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_site_wide_qualification_becomes_every_existing_projects(django_user_model):
    """From the last migration before qualification per project, with two projects: nothing lost."""
    before = [("crowd", "0010_hitbatch_pool")]
    head = MigrationExecutor(connection).loader.graph.leaf_nodes()
    qualified = django_user_model.objects.create_user("quinn", password="x")
    newcomer = django_user_model.objects.create_user("nora", password="x")
    try:
        old_apps = _migrate(before).loader.project_state(before).apps
        Project = old_apps.get_model("projects", "Project")
        alpha, beta = Project.objects.create(name="alpha"), Project.objects.create(name="beta")
        Profile = old_apps.get_model("crowd", "AnnotatorProfile")
        when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        Profile.objects.create(user_id=qualified.pk, qualified_at=when)
        Profile.objects.create(user_id=newcomer.pk)
        attempt = old_apps.get_model("crowd", "QualificationAttempt").objects.create(
            user_id=newcomer.pk, unit_ids=[1, 2], started_at=when)
        old_apps.get_model("crowd", "CrowdSettings").objects.create(pk=1, qualification_size=3)

        new_apps = _migrate(head).loader.project_state(head).apps
        # The attempt had no project: it goes to Default, made for it.
        moved = new_apps.get_model("crowd", "QualificationAttempt").objects.get(pk=attempt.pk)
        default = new_apps.get_model("projects", "Project").objects.get(pk=moved.project_id)
        assert default.name == "Default"
        # Qualified for every project, as they were; the newcomer for none.
        Qualification = new_apps.get_model("crowd", "Qualification")
        assert sorted(Qualification.objects.values_list("user_id", "project_id", "qualified_at")) == [
            (qualified.pk, alpha.pk, when), (qualified.pk, beta.pk, when), (qualified.pk, default.pk, when)]
        sizes = new_apps.get_model("crowd", "QualificationSettings").objects.values_list("project_id", "size")
        assert dict(sizes) == {alpha.pk: 3, beta.pk: 3, default.pk: 3}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

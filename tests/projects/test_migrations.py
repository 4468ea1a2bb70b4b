"""A database from before projects existed migrates with every row kept, all of it in "Default".

The schema is rolled back to the last migrations before projects (the projects app unapplied),
one row is written into every table of the four apps through the historical models, with
requesters (staff, the requesters group) and annotators among the users; after migrating to the
head every row reads back, every row that has a project is in "Default", and Default's members
are exactly the requesters, as requesters.
"""
from __future__ import annotations

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
        # networks, datasets, jobs, HIT batches, aggregation runs, verifications, exports, synonyms
        assert with_project == 8, with_project
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

"""A database made by the code before the apps moved (units/ -> units/dissection/ and friends)
migrates forward to today's head with every row intact.

The apps kept their labels (units, crowd, results, sanity), so the old migration history is still
theirs. The test rolls the schema back to the last migrations main had before the move, writes
one row into every table of the four apps through the historical models, migrates to the head
(whatever migrations later work added), and reads each row back by its primary key.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.migration_rows import fill_every_table

# The leaves of each app's migration history on main before the reorganisation.
BEFORE_MOVE = [("units", "0001_initial"), ("crowd", "0002_annotators"), ("results", "0001_initial"),
               ("sanity", "0001_initial")]
APPS = [label for label, _ in BEFORE_MOVE]


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_migrates_to_the_head_with_every_row_kept(django_user_model):
    user = django_user_model.objects.create_user("keeper", password="x")
    executor = MigrationExecutor(connection)
    head = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_MOVE)
        old_apps = MigrationExecutor(connection).loader.project_state(BEFORE_MOVE).apps
        written = fill_every_table(old_apps, user, APPS)
        assert len(written) >= 20, sorted(written)  # every table of the four apps, not a sample

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(head)

        new_apps = MigrationExecutor(connection).loader.project_state(head).apps
        for (label, model_name), expected in written.items():
            model = new_apps.get_model(label, model_name)
            row = model.objects.filter(pk=expected["pk"]).values().first()
            assert row is not None, f"{label}.{model_name} row {expected['pk']} was lost"
            for field, value in expected.items():
                if field != "pk" and field in row:
                    assert row[field] == value, (label, model_name, field)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_moved_apps_keep_their_labels():
    from django.apps import apps

    assert apps.get_app_config("units").name == "units.dissection"
    # projects is the one app made after the move
    assert {c.label for c in apps.get_app_configs() if c.name.startswith("units.")} == {*APPS, "projects"}

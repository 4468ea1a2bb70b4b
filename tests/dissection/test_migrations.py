"""A database made by the code before the apps moved (units/ -> units/dissection/ and friends)
migrates forward to today's head with every row intact.

The apps kept their labels (units, crowd, results, sanity), so the old migration history is still
theirs. The test rolls the schema back to the last migrations main had before the move, writes
one row into every table of the four apps through the historical models, migrates to the head
(whatever migrations later work added), and reads each row back by its primary key.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor

# The leaves of each app's migration history on main before the reorganisation.
BEFORE_MOVE = [("units", "0001_initial"), ("crowd", "0002_annotators"), ("results", "0001_initial"),
               ("sanity", "0001_initial")]
APPS = [label for label, _ in BEFORE_MOVE]


def _value(field: models.Field, n: int):
    """A valid value for a required field of a historical model."""
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, (models.DateTimeField,)):
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if isinstance(field, models.DateField):
        return dt.date(2026, 1, 1)
    if isinstance(field, models.DecimalField):
        return Decimal("0.05")
    if isinstance(field, models.FloatField):
        return 0.5
    if isinstance(field, (models.IntegerField, models.PositiveIntegerField, models.BigIntegerField)):
        return n
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.FileField):
        return f"files/{n}.bin"
    if isinstance(field, (models.CharField, models.TextField)):
        return f"v{n}"[: field.max_length or 100]
    raise AssertionError(f"no test value for {field!r}")


def _fill(state_apps, user) -> dict[tuple[str, str], dict]:
    """One row per model, parents before children; returns each row's pk and field values."""
    made: dict[tuple[str, str], object] = {}
    pending = [m for label in APPS for m in state_apps.get_app_config(label).get_models()]
    written: dict[tuple[str, str], dict] = {}
    n = 1
    while pending:
        progressed = False
        for model in list(pending):
            values = {}
            ready = True
            for field in model._meta.concrete_fields:
                if field.auto_created or field.primary_key:
                    continue
                if field.is_relation:
                    target = field.related_model._meta
                    if target.label_lower == "auth.user":
                        values[field.attname] = user.pk
                        continue
                    key = (target.app_label, target.model_name)
                    if key not in made:
                        if field.null:
                            continue
                        ready = False
                        break
                    values[field.attname] = made[key].pk
                elif not field.null and not field.has_default() and not getattr(field, "auto_now_add", False) \
                        and not getattr(field, "auto_now", False):
                    values[field.attname] = _value(field, n)
                elif field.has_default() and field.choices:
                    values[field.attname] = field.get_default()
            if not ready:
                continue
            row = model.objects.create(**values)
            key = (model._meta.app_label, model._meta.model_name)
            made[key] = row
            written[key] = {"pk": row.pk, **{f: v for f, v in values.items() if not f.endswith("_id")}}
            pending.remove(model)
            progressed = True
            n += 1
        assert progressed, f"cannot order these models by their foreign keys: {pending}"
    return written


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_migrates_to_the_head_with_every_row_kept(django_user_model):
    user = django_user_model.objects.create_user("keeper", password="x")
    executor = MigrationExecutor(connection)
    head = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_MOVE)
        old_apps = MigrationExecutor(connection).loader.project_state(BEFORE_MOVE).apps
        written = _fill(old_apps, user)
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
    assert {c.label for c in apps.get_app_configs() if c.name.startswith("units.")} == set(APPS)

"""Rows for migration tests: one valid row in every table of some apps, through historical models."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models


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


def fill_every_table(state_apps, user, labels: list[str]) -> dict[tuple[str, str], dict]:
    """One row per model of these apps, parents before children; returns each row's pk and field values."""
    made: dict[tuple[str, str], object] = {}
    pending = [m for label in labels for m in state_apps.get_app_config(label).get_models()]
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

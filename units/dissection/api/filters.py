"""Filters shared by the API's viewsets."""
import django_filters
from django import forms

from annotate_site.converters import MAX_ID


def strict_boolean(field_name: str) -> django_filters.TypedChoiceFilter:
    """A true/false filter that answers 400 on any other value (django-filter's own silently ignores
    `?interpretable=maybe` and returns every row, which reads as a wrong answer)."""
    return django_filters.TypedChoiceFilter(
        field_name=field_name, coerce=lambda value: value.lower() in ("true", "1"),
        choices=[(v, v) for v in ("true", "false", "True", "False", "1", "0")],
    )



class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


def id_filter(field_name: str) -> IdFilter:
    """A filter on a row id: a whole number within 64 bits, else 400. (A plain NumberFilter passes any
    Decimal to the query, and SQLite cannot bind one beyond 64 bits: a 500.)"""
    return IdFilter(field_name=field_name, min_value=-MAX_ID - 1, max_value=MAX_ID)

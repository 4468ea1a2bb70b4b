"""Filters shared by the API's viewsets."""
import re

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


NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")


class IdOrNameField(forms.CharField):
    """A row's id (a whole number within 64 bits) or its name; a number that is no such id is a 400."""

    def clean(self, value):
        value = super().clean(value)
        if value and NUMBER.fullmatch(value) and (not WHOLE_NUMBER.fullmatch(value)
                                                  or not -MAX_ID - 1 <= int(value) <= MAX_ID):
            raise forms.ValidationError(f"{value!r} is neither an id (a whole number within 64 bits) nor a name.")
        return value


class IdOrNameFilter(django_filters.CharFilter):
    """A filter that takes a row's id or its name: `?layer=12` or `?layer=conv2`. A whole number is read
    as an id (a layer literally named "3" is reached by `layer_name=3` where the endpoint has it)."""

    field_class = IdOrNameField

    def __init__(self, *, id_field: str, name_field: str, **kwargs) -> None:
        super().__init__(field_name=id_field, **kwargs)
        self.name_field = name_field

    def filter(self, qs, value):
        if value in django_filters.constants.EMPTY_VALUES:
            return qs
        if WHOLE_NUMBER.fullmatch(value):
            return qs.filter(**{self.field_name: int(value)})
        return qs.filter(**{self.name_field: value})


def id_or_name_filter(id_field: str, name_field: str, what: str) -> IdOrNameFilter:
    return IdOrNameFilter(id_field=id_field, name_field=name_field, help_text=f"the {what}'s id, or its name")

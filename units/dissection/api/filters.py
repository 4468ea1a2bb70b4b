"""Filters shared by the API's viewsets."""
import django_filters


def strict_boolean(field_name: str) -> django_filters.TypedChoiceFilter:
    """A true/false filter that answers 400 on any other value (django-filter's own silently ignores
    `?interpretable=maybe` and returns every row, which reads as a wrong answer)."""
    return django_filters.TypedChoiceFilter(
        field_name=field_name, coerce=lambda value: value.lower() in ("true", "1"),
        choices=[(v, v) for v in ("true", "false", "True", "False", "1", "0")],
    )

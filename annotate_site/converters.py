"""URL converters of the site."""
from django.urls import register_converter

# Row ids are 64-bit signed integers in every database we run on; a bigger number names no row.
MAX_ID = 2**63 - 1


class IdConverter:
    """`<id:pk>`: a row id. Beyond 64 bits the URL matches nothing (404): SQLite cannot even bind such a
    number, and the views' raw SQL would answer 500."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("beyond 64 bits")  # Django reads a ValueError here as "no match"
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

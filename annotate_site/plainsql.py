"""Plain SQL for the hot paths, read back into the same model instances the ORM builds.

Why: building and compiling an ORM query costs more CPU than PostgreSQL spends running it for the
small indexed reads of the crowd's claim and submit, which every annotator request makes (profiles:
`benchmarks/RESULTS.md`). The hot queries are written once as SQL over `Table`s
instead; `Table.load` turns a row back into an instance the way the ORM's compiler does (the backend's
and the field's converters, then `Model.from_db`), and `cache_related` sets what `select_related`
would have set. Tests compare every such query with its ORM definition, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, cast

from django.db import connection
from django.db.models import ForeignKey, Model


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def column_of(field) -> str:
    """A concrete field's column name (Django types it optional: relations without a column have none)."""
    return cast(str, field.column)


def for_update(*, of: Sequence[str] = (), skip_locked: bool = False) -> str:
    """The backend's row-lock clause (" FOR UPDATE OF a SKIP LOCKED" on PostgreSQL), empty where there is
    none (SQLite serialises writers instead), as the ORM's select_for_update writes it."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    of = tuple(of) if features.has_select_for_update_of else ()
    skip_locked = skip_locked and features.has_select_for_update_skip_locked
    return " " + connection.ops.for_update_sql(skip_locked=skip_locked, of=of)


def param(value):
    """A datetime (or other) parameter adapted as the ORM adapts it for this backend."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class Table:
    """A model's table under an alias: its column list for SELECT and the loader of a row's slice."""

    def __init__(self, model: type[Model], alias: str):
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self._index = {name: i for i, name in enumerate(self.attnames)}
        self._pk_index = self._index[model._meta.pk.attname]
        self._converters_by_backend: dict[tuple[str, str], dict[int, tuple[list, object]]] = {}

    @cached_property
    def name(self) -> str:  # for FROM / JOIN: "crowd_hit" h (both backends quote names alike)
        return f"{quote(self.model._meta.db_table)} {self.alias}"

    def col(self, attname: str) -> str:
        return f"{self.alias}.{quote(column_of(self.fields[self._index[attname]]))}"

    @cached_property
    def columns(self) -> str:  # both backends quote names alike
        return ", ".join(f"{self.alias}.{quote(column_of(f))}" for f in self.fields)

    def _converters(self) -> dict[int, tuple[list, object]]:
        """{index: (converters, column)} for the fields whose database value needs converting, as the
        ORM's compiler finds them: the backend's, then the field's. Kept per backend."""
        key = (connection.vendor, connection.alias)
        found = self._converters_by_backend.get(key)
        if found is None:
            found = {}
            for i, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if converters:
                    found[i] = (converters, col)
            self._converters_by_backend[key] = found
        return found

    def _convert(self, i: int, value):
        converters, col = self._converters().get(i, ((), None))
        for convert in converters:
            value = convert(value, col, connection)
        return value

    def load(self, row: Sequence, start: int = 0) -> tuple[Model | None, int]:
        """The instance in row[start:start + len(fields)] (None where a LEFT JOIN found nothing: a null
        primary key), and where the next table's columns begin."""
        end = start + len(self.fields)
        values = list(row[start:end])
        if values[self._pk_index] is None:
            return None, end
        for i in self._converters():
            if values[i] is not None:
                values[i] = self._convert(i, values[i])
        return self.model.from_db(connection.alias, self.attnames, values), end

    def value(self, attname: str, raw):
        """One column's value as the ORM gives it (a JSON column read as text is parsed, and so on)."""
        return None if raw is None else self._convert(self._index[attname], raw)


def columns(*tables: Table) -> str:
    """The SELECT list of several tables, in order (read back with `load_row`)."""
    return ", ".join(t.columns for t in tables)


def load_row(row: Sequence, *tables: Table) -> list[Model | None]:
    """The instances of a row selected with `columns(*tables)`, one per table, in order."""
    out, start = [], 0
    for table in tables:
        instance, start = table.load(row, start)
        out.append(instance)
    return out


def placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def count_where(condition: str) -> str:
    """COUNT(*) FILTER (WHERE condition), written so that both backends take it."""
    return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"


def cache_related(instance: Model, name: str, related: Model | None) -> None:
    """Set a loaded foreign key's object on `instance`, as select_related does (no query, no change
    of the key itself)."""
    cast(ForeignKey, instance._meta.get_field(name)).set_cached_value(instance, related)


def prepared_statements() -> bool:
    """Whether the hot queries run as prepared statements: PostgreSQL with a `prepare_threshold` in the
    database OPTIONS (settings turn it on unless DB_PREPARED_STATEMENTS=0, e.g. behind a transaction-mode
    pooler), and no query logging asked for (DEBUG, or a test counting queries, sees every query as usual)."""
    return (connection.vendor == "postgresql" and not connection.queries_logged
            and connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None)


def _run(sql: str, params: Sequence, read: Callable[[Any], Any]):
    values = [param(p) for p in params]
    if not prepared_statements():
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return read(cursor)
    # Planning these joins costs PostgreSQL more than running them (the shortlist plans for milliseconds and
    # runs in tenths of one), and Django's default cursor binds parameters on the client, which never
    # prepares. A server-binding cursor on the same connection and transaction prepares each statement once
    # per connection (psycopg keeps the names) and then only executes it.
    import psycopg  # the PostgreSQL driver: only imported where the backend is PostgreSQL

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, values, prepare=True)
        return read(cursor)


def fetch_one(sql: str, params: Sequence = ()) -> tuple | None:
    return _run(sql, params, lambda cursor: cursor.fetchone())


def fetch_all(sql: str, params: Sequence = ()) -> list[tuple]:
    return _run(sql, params, lambda cursor: cursor.fetchall())


def execute(sql: str, params: Sequence = ()) -> int:
    """Run a statement; the number of rows it changed."""
    return _run(sql, params, lambda cursor: cursor.rowcount)

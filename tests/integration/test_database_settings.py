"""How the site talks to PostgreSQL: settings that only the real database can show."""
import pytest
from django.db import connection

from tests.conftest import need_service

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_postgresql_jit_is_off_for_the_sites_connections():
    """JIT compiled the claim's exact query for 558 ms where it ran 14 ms (a drained queue under load)."""
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'jit'")
        assert cursor.fetchone()[0] == "off"


def _prepared(fragment: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{fragment}%"])
        return cursor.fetchone()[0]


def test_the_hot_paths_plain_sql_runs_as_prepared_statements_on_postgresql():
    """Planning the claim's joins cost PostgreSQL more than running them: the plain-SQL reads are prepared once
    per connection. A query that is counted (DEBUG, or a test's query log) runs as usual and is seen."""
    from django.db import IntegrityError, transaction
    from django.test.utils import CaptureQueriesContext

    from annotate_site import plainsql

    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    assert plainsql.prepared_statements()
    marker = "prepared_probe_1"
    assert _prepared(marker) == 0
    for _ in range(3):
        assert plainsql.fetch_one(f"SELECT %s::int + 1 AS {marker}", [41]) == (42,)
    assert _prepared(marker) == 1  # prepared once, then executed
    with CaptureQueriesContext(connection) as seen:
        assert plainsql.fetch_all("SELECT %s::int * 2 AS prepared_probe_2", [21]) == [(42,)]
    assert len(seen) == 1 and _prepared("prepared_probe_2") == 0
    # A database error through a prepared statement is Django's, and the transaction rolls back as usual.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE prepared_probe_t (id int PRIMARY KEY)")
    with pytest.raises(IntegrityError), transaction.atomic():
        plainsql.execute("INSERT INTO prepared_probe_t VALUES (%s)", [1])
        plainsql.execute("INSERT INTO prepared_probe_t VALUES (%s)", [1])
    assert plainsql.fetch_one("SELECT COUNT(*) FROM prepared_probe_t") == (0,)

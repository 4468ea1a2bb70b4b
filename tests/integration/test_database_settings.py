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

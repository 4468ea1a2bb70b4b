"""The OpenAPI schema and its browsable docs are for signed-in users and need no CDN."""
import re

import pytest
from django.test import Client

from tests.factories import PASSWORD


@pytest.mark.django_db
def test_anonymous_visitors_get_neither_the_schema_nor_the_docs():
    client = Client()
    assert client.get("/api/schema/").status_code in (401, 403)
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_docs_page_loads_swagger_ui_from_this_site_not_a_cdn(annotator):
    client = Client()
    assert client.login(username=annotator.username, password=PASSWORD)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in s for s in sources), sources
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/assignments/next/" in schema.content

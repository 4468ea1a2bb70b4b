"""Attack: the site sends no mail, so password reset is not offered at all: no form to hammer, no
mail to a server that is not there, no link to it."""
import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", [
    "/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/MQ/set-password/",
    "/accounts/reset/MQ/abc-123/", "/accounts/reset/done/", "/accounts/password_reset",
    "/accounts//password_reset/", "/ACCOUNTS/password_reset/",
])
def test_every_password_reset_route_is_gone(annotator, mailoutbox, path):
    client = Client()
    for method in (client.get, client.post):
        response = method(path, {"email": "annie@example.org"})
        assert response.status_code in (404, 301, 302) and response.status_code != 200, (path, response.status_code)
        if response.status_code in (301, 302):
            assert client.get(response["Location"]).status_code == 404
    assert mailoutbox == []


def test_the_login_page_offers_no_reset_link(db):
    page = Client().get(reverse("login")).content.decode()
    assert "password_reset" not in page and "reset" not in page.lower()

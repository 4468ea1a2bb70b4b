"""Error pages are the site's own (no Django default pages), and out-of-range ids never reach a 500."""
import pytest
from django.test import Client
from django.template.loader import render_to_string
from django.urls import path, reverse

from tests.factories import make_job

pytestmark = pytest.mark.django_db

HUGE_ID = str(2**70)  # no 64-bit key can hold it; SQLite cannot even compare it


def boom(request):
    raise RuntimeError("a bug in a view")


# Used only by the test marked with @pytest.mark.urls(__name__) below.
urlpatterns = [path("boom/", boom)]


def test_an_unknown_address_gets_the_sites_not_found_page(client, annotator):
    client.force_login(annotator)
    response = client.get("/no/such/page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in page and "/no/such/page/" in page
    assert 'class="topbar"' in page and annotator.username in page  # the site's header, signed in


def test_an_annotator_on_a_requester_page_is_told_why_on_the_sites_page(client, annotator):
    client.force_login(annotator)
    response = client.get(reverse("dissection:job_list"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "This page is for requesters and project members." in page and 'class="topbar"' in page


def test_a_form_sent_without_its_security_token_gets_a_plain_explanation():
    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "a", "password": "b"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "security token" in page and 'class="topbar"' in page


def test_the_server_error_page_renders_without_a_request():
    page = render_to_string("500.html")  # Django renders it with no request and no context processors
    assert "Something went wrong" in page and "<html" in page


@pytest.mark.urls(__name__)
def test_a_crashing_view_shows_the_sites_server_error_page(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_publishing_with_an_out_of_range_layer_id_is_a_form_error(client, requester):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    client.force_login(requester)
    response = client.post(reverse("publish"), {
        "layers": [HUGE_ID], "assignments_per_hit": 3, "reward": "0.05", "lifetime_hours": 1,
        "assignment_minutes": 5, "auto_approval_hours": 1, "exemplars_shown": 2, "sentinels": 0,
    })
    assert response.status_code == 200
    assert "not one of the available choices" in response.content.decode()
    assert not job.layer_set.first().units.filter(hits__isnull=False).exists()


@pytest.mark.parametrize("job_param", ["abc", HUGE_ID, "-1"])
def test_the_publish_page_ignores_a_job_parameter_that_is_not_an_id(client, requester, job_param):
    make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    client.force_login(requester)
    assert client.get(reverse("publish"), {"job": job_param}).status_code == 200

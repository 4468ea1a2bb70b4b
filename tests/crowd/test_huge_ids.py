"""Attack: numbers beyond 64 bits where the API expects an id answer 404 (in the path) or 400 (in a
filter), never 500, for every persona. SQLite cannot bind such a number at all."""
import pytest
from rest_framework.test import APIClient

from units.crowd.services import assignment_claim

pytestmark = pytest.mark.django_db
HUGE = "99999999999999999999999"
NEGATIVE_HUGE = "-" + HUGE
JUST_BEYOND = str(2**63)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("action", ["submit", "return", "skip", "verdict"])
@pytest.mark.parametrize("number", [HUGE, JUST_BEYOND])
def test_a_huge_assignment_id_in_the_path_is_not_found(annotator, requester, hits, action, number):
    assignment_claim(worker=annotator)
    for user in (annotator, requester):
        for body in ({}, {"word": "seven", "category": "object", "verdict": "yes"}):
            response = api(user).post(f"/api/assignments/{number}/{action}/", body, format="json")
            assert response.status_code == 404, (user, action, body, response.status_code)


FILTERS = {
    "assignments": ["layer", "batch"],
    "annotations": ["layer", "unit", "hit"],
    "labels": ["layer", "job"],
    "hits": ["layer", "job"],
    "units": ["job", "layer"],
    "verifications": ["layer", "job"],
}


@pytest.mark.parametrize("collection, name", [(c, n) for c, names in FILTERS.items() for n in names])
@pytest.mark.parametrize("number", [HUGE, NEGATIVE_HUGE, JUST_BEYOND])
def test_a_huge_id_in_a_filter_is_a_bad_request_that_says_why(annotator, requester, hits, collection, name, number):
    assignment_claim(worker=annotator)
    for user in (annotator, requester):
        response = api(user).get(f"/api/{collection}/", {name: number})
        assert response.status_code in (400, 403), (user, collection, name, response.status_code)
        if response.status_code == 400:
            assert name in response.json()


def test_an_id_filter_still_takes_a_real_id_and_refuses_a_fraction(requester, hits):
    layer = hits[0].unit.layer_id
    ok = api(requester).get("/api/hits/", {"layer": layer})
    assert ok.status_code == 200 and ok.json()["count"] == len(hits)
    assert api(requester).get("/api/hits/", {"layer": "1.5"}).status_code == 400

"""The REST flow: token, next assignment, submit, return; annotators reach only their own."""
import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_user
from units.crowd.models import Annotation, Assignment, Hit
from units.crowd.selectors import hit_pictures

pytestmark = pytest.mark.django_db


def token_client(username):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def test_a_token_is_given_for_the_right_password_only(annotator):
    assert APIClient().post("/api/auth/token/", {"username": "annie", "password": "wrong"}).status_code == 400


def test_next_returns_the_assignment_with_everything_to_label_it(annotator, hits):
    response = token_client("annie").post("/api/assignments/next/")
    assert response.status_code == 201
    body = response.json()
    a = Assignment.objects.get(worker=annotator)
    assert body["assignment"]["id"] == a.pk and body["hit"]["id"] == a.hit_id
    assert body["unit"] == {"id": a.hit.unit_id, "layer": "conv3", "index": a.hit.unit.index}
    assert [e["id"] for e in body["exemplars"]] == [ex.pk for ex in hit_pictures(a.hit)]
    assert body["exemplars"][0]["picture_url"].startswith("http://testserver/pictures/")
    assert body["deadline"]
    assert "kind" not in body["exemplars"][0]  # sentinels must not be told apart


def test_next_says_204_when_there_is_no_work(annotator, hits):
    Hit.objects.all().delete()
    assert token_client("annie").post("/api/assignments/next/").status_code == 204


def test_next_is_refused_to_an_unqualified_annotator(hits):
    make_user("newbie")
    response = token_client("newbie").post("/api/assignments/next/")
    assert response.status_code == 403 and "qualification" in response.json()["detail"]


def test_submit_then_double_submit_then_different_answer(annotator, hits):
    client = token_client("annie")
    body = client.post("/api/assignments/next/").json()
    pk = body["assignment"]["id"]
    answer = {"word": "seven", "category": "object", "non_fitting": [body["exemplars"][0]["id"]], "confidence": 5,
              "description": "sevens in the middle"}
    first = client.post(f"/api/assignments/{pk}/submit/", answer, format="json")
    assert first.status_code == 200 and first.json()["status"] == "submitted"
    again = client.post(f"/api/assignments/{pk}/submit/", answer, format="json")
    assert again.status_code == 200 and again.json()["annotation"] == first.json()["annotation"]
    changed = client.post(f"/api/assignments/{pk}/submit/", {**answer, "word": "eight"}, format="json")
    assert changed.status_code == 409
    assert Annotation.objects.get().word == "seven"


def test_invalid_submits_give_400_with_field_errors(annotator, hits):
    client = token_client("annie")
    pk = client.post("/api/assignments/next/").json()["assignment"]["id"]
    response = client.post(f"/api/assignments/{pk}/submit/", {"word": "", "category": "object"}, format="json")
    assert response.status_code == 400 and "word" in response.json()["errors"]
    response = client.post(f"/api/assignments/{pk}/submit/", {"word": "x", "category": "object",
                                                               "non_fitting": [424242]}, format="json")
    assert response.status_code == 400 and "424242" in response.json()["errors"]["non_fitting"][0]
    response = client.post(f"/api/assignments/{pk}/submit/", {"word": "x"}, format="json")
    assert response.status_code == 400 and "category" in response.json()["errors"]


def test_return_frees_the_slot(annotator, hits):
    client = token_client("annie")
    pk = client.post("/api/assignments/next/").json()["assignment"]["id"]
    response = client.post(f"/api/assignments/{pk}/return/")
    assert response.status_code == 200 and response.json()["status"] == "returned"
    assert client.post(f"/api/assignments/{pk}/return/").status_code == 409


def test_another_annotator_cannot_submit_or_return_my_assignment(annotator, other_annotator, hits):
    pk = token_client("annie").post("/api/assignments/next/").json()["assignment"]["id"]
    otto = token_client("otto")
    assert otto.post(f"/api/assignments/{pk}/submit/", {"word": "x", "category": "object"},
                     format="json").status_code == 404
    # an answer that would be refused gets the same 404: the body is not judged first
    assert otto.post(f"/api/assignments/{pk}/submit/", {"word": ""}, format="json").status_code == 404
    assert otto.post(f"/api/assignments/{pk}/return/").status_code == 404
    assert otto.get(f"/api/assignments/{pk}/").status_code == 404
    assert Assignment.objects.get(pk=pk).status == "accepted"


@pytest.mark.parametrize("action", ["submit", "return"])
def test_an_assignment_that_does_not_exist_is_a_404_naming_the_id(annotator, hits, action):
    response = token_client("annie").post(f"/api/assignments/987654/{action}/",
                                          {"word": "x", "category": "object"}, format="json")
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


def test_the_api_needs_authentication(hits):
    client = APIClient()
    assert client.post("/api/assignments/next/").status_code == 401
    assert client.post("/api/assignments/1/submit/", {}).status_code == 401

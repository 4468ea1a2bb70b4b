"""Idempotency keys on the API's POSTs (annotate_site/idempotency.py): a retried create creates once."""
import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import make_job
from units.dissection.models import DissectionJob

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def test_a_post_sent_twice_with_one_key_creates_once_and_replays_the_answer(requester):
    template = make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    client = _client(requester)
    body = {"network": template.network_id, "dataset": template.dataset_id, "layers": ["conv1"]}
    first = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"] and second["Idempotent-Replayed"] == "true"
    third = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert third.json()["id"] != first.json()["id"]
    assert client.post("/api/v1/jobs/", body, format="json").status_code == 201  # no key: a plain create
    assert DissectionJob.objects.count() == 4


def test_keys_are_scoped_to_the_caller_and_refused_when_too_long(requester, admin):
    template = make_job(layers={"conv1": 1}, exemplars_per_unit=1)
    body = {"network": template.network_id, "dataset": template.dataset_id, "layers": ["conv1"]}
    mine = _client(requester).post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    theirs = _client(admin).post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert theirs.json()["id"] != mine.json()["id"] and "Idempotent-Replayed" not in theirs
    long = _client(requester).post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert long.status_code == 400 and "longer than 200" in long.json()["detail"]


def test_anonymous_requests_and_token_logins_are_never_replayed(requester):
    from tests.factories import PASSWORD

    client = APIClient()
    login = {"username": requester.username, "password": PASSWORD}
    first = client.post("/api/v1/auth/token/", login, HTTP_IDEMPOTENCY_KEY="k")
    second = client.post("/api/v1/auth/token/", login, HTTP_IDEMPOTENCY_KEY="k")
    assert first.json()["token"] != second.json()["token"] and "Idempotent-Replayed" not in second
    assert client.post("/api/v1/jobs/", {}, HTTP_IDEMPOTENCY_KEY="k").status_code == 401

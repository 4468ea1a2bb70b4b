"""API tokens (knox) die when they should; logins, sign-ups and the API are throttled with a 429
that says when to retry (axes, DRF scoped throttles)."""
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import PASSWORD
from units.crowd.annotators import annotator_block

pytestmark = pytest.mark.django_db


def get_token(username: str, password: str = PASSWORD, client: APIClient | None = None):
    return (client or APIClient()).post("/api/auth/token/", {"username": username, "password": password},
                                        format="json")


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def can_use(token: str) -> int:
    return with_token(token).get("/api/assignments/").status_code


# --- tokens -------------------------------------------------------------------------------------

def test_the_token_endpoint_answers_json_with_a_token_and_its_expiry(annotator):
    response = get_token("annie")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"token", "expiry"} and len(body["token"]) == 64
    assert can_use(body["token"]) == 200


def test_tokens_are_stored_hashed_not_in_plain_text(annotator):
    token = get_token("annie").json()["token"]
    row = AuthToken.objects.get(user=annotator)
    assert token not in (row.digest, row.token_key) and row.token_key == token[:15]
    assert len(row.digest) == 128  # sha512 hex


def test_an_expired_token_answers_401(annotator):
    token = get_token("annie").json()["token"]
    AuthToken.objects.filter(user=annotator).update(expiry=timezone.now() - timedelta(seconds=1))
    assert can_use(token) == 401
    assert not AuthToken.objects.filter(user=annotator).exists()  # knox deletes it on sight


def test_expired_tokens_are_refused_and_swept_when_a_new_token_is_issued_not_on_every_request(annotator):
    old, live = get_token("annie").json()["token"], get_token("annie").json()["token"]
    stale = AuthToken.objects.filter(user=annotator).order_by("created").first()
    AuthToken.objects.filter(pk=stale.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert can_use(live) == 200
    assert AuthToken.objects.filter(pk=stale.pk).exists()  # no per-request sweep of the other tokens
    assert can_use(old) == 401  # ... but the expired one itself is refused, and deleted
    assert not AuthToken.objects.filter(pk=stale.pk).exists()
    again = get_token("annie").json()["token"]
    AuthToken.objects.filter(user=annotator).exclude(digest__in=[
        t.digest for t in AuthToken.objects.filter(user=annotator).order_by("-created")[:1]]).update(
        expiry=timezone.now() - timedelta(seconds=1))  # every token but the newest has expired
    get_token("annie")  # issuing a token sweeps the user's expired ones
    assert AuthToken.objects.filter(user=annotator).count() == 2  # the newest before, and the new one
    assert can_use(again) == 200 and can_use(live) == 401


def test_tokens_expire_after_the_configured_time(annotator, settings):
    get_token("annie")
    row = AuthToken.objects.get(user=annotator)
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert abs((row.expiry - row.created) - ttl) < timedelta(seconds=5)


def test_a_password_change_on_the_page_revokes_every_token(annotator, client):
    tokens = [get_token("annie").json()["token"] for _ in range(2)]
    client.force_login(annotator)
    response = client.post(reverse("password_change"), {
        "old_password": PASSWORD, "new_password1": "another-horse-battery-9",
        "new_password2": "another-horse-battery-9"})
    assert response.status_code == 302
    assert [can_use(t) for t in tokens] == [401, 401]
    assert get_token("annie", "another-horse-battery-9").status_code == 200


def test_a_password_set_in_code_revokes_tokens_but_other_saves_do_not(annotator, other_annotator):
    mine, theirs = get_token("annie").json()["token"], get_token("otto").json()["token"]
    annotator.first_name = "Annie"
    annotator.save()
    assert can_use(mine) == 200
    annotator.set_password("another-horse-battery-9")
    annotator.save(update_fields=["password"])
    assert (can_use(mine), can_use(theirs)) == (401, 200)


def test_deactivating_a_user_revokes_their_tokens(annotator):
    token = get_token("annie").json()["token"]
    annotator.is_active = False
    annotator.save()
    assert can_use(token) == 401


def test_blocking_an_annotator_revokes_their_tokens_and_refuses_new_ones(annotator, requester, client):
    token = get_token("annie").json()["token"]
    client.force_login(requester)
    client.post(reverse("crowd:annotator_action", args=[annotator.pk]), {"action": "block", "reason": "spam"})
    assert can_use(token) == 401
    refused = get_token("annie")
    assert refused.status_code == 403 and "blocked" in refused.json()["detail"]


def test_blocking_in_code_revokes_too(annotator):
    token = get_token("annie").json()["token"]
    annotator_block(user=annotator, reason="x")
    assert can_use(token) == 401


def test_logout_revokes_the_token_used_and_logoutall_every_token(annotator):
    first, second, third = (get_token("annie").json()["token"] for _ in range(3))
    assert with_token(first).post("/api/auth/logout/").status_code == 204
    assert (can_use(first), can_use(second)) == (401, 200)
    assert with_token(second).post("/api/auth/logoutall/").status_code == 204
    assert (can_use(second), can_use(third)) == (401, 401)


@pytest.mark.parametrize("header", ["Token", "Bearer {t}", "Token {t}x", "Token {t} {t}", "Token " + "A" * 64])
def test_malformed_or_unknown_tokens_answer_401(annotator, header):
    token = get_token("annie").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(t=token))
    assert client.get("/api/assignments/").status_code in (401, 403)  # never 200, never 500
    assert client.get("/api/assignments/").status_code != 200


def test_a_token_with_a_real_key_but_a_forged_rest_answers_401(annotator, other_annotator):
    """The token's first 15 characters find the row; the whole token's hash must still match it."""
    token = get_token("annie").json()["token"]
    for forged in (token[:15] + "0" * 49, token[:-1] + ("0" if token[-1] != "0" else "1"), token[:15]):
        assert can_use(forged) == 401
    assert can_use(token) == 200  # and the real one still works


def test_a_token_of_a_user_deactivated_without_the_revoking_save_answers_401(annotator):
    token = get_token("annie").json()["token"]
    type(annotator).objects.filter(pk=annotator.pk).update(is_active=False)  # no save, no signal: no revoke
    assert can_use(token) == 401


def test_bad_input_to_the_token_endpoint_is_a_clear_400(db):
    for body in ({}, {"username": "x"}, {"username": "x" * 500, "password": "y"}, {"username": ["a"], "password": 1}):
        response = APIClient().post("/api/auth/token/", body, format="json")
        assert response.status_code == 400, body
    assert not AuthToken.objects.exists()


# --- DRF throttles: token, claim, submit --------------------------------------------------------

def test_the_token_endpoint_answers_429_with_retry_after_past_its_rate(annotator, settings):
    limit = int(settings.THROTTLE_RATES["token"].split("/")[0])
    client = APIClient()
    statuses = [get_token("annie", client=client).status_code for _ in range(limit + 1)]
    assert statuses == [200] * limit + [429]
    last = get_token("annie", client=client)
    assert last.status_code == 429 and 0 < int(last["Retry-After"]) <= 60
    assert AuthToken.objects.filter(user=annotator).count() == limit


@pytest.fixture
def small_rates(monkeypatch):
    # DRF binds the rates to the class when it is imported; set them as THROTTLE_CLAIM/SUBMIT would.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "100/min", "claim": "3/min", "submit": "2/min"})


def test_claims_answer_429_past_the_claim_rate_per_annotator(annotator, other_annotator, hits, small_rates):
    annie, otto = APIClient(), APIClient()
    annie.force_authenticate(annotator)
    otto.force_authenticate(other_annotator)
    statuses = [annie.post("/api/assignments/next/").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    throttled = annie.post("/api/assignments/next/")
    assert "Retry-After" in throttled and "throttled" in throttled.json()["detail"]
    assert otto.post("/api/assignments/next/").status_code == 201  # counted per user


def test_submits_answer_429_past_the_submit_rate(annotator, hits, small_rates):
    from units.crowd.models import Annotation

    annie = APIClient()
    annie.force_authenticate(annotator)
    pk = annie.post("/api/assignments/next/").json()["assignment"]["id"]
    answer = {"word": "seven", "category": "object"}
    statuses = [annie.post(f"/api/assignments/{pk}/submit/", answer, format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert Annotation.objects.count() == 1


# --- axes: logins and sign-ups ----------------------------------------------------------------------

@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    return settings.AXES_FAILURE_LIMIT


def test_the_login_page_locks_out_after_repeated_failures_even_for_the_right_password(annotator, axes_on):
    client = Client()
    for _ in range(axes_on - 1):
        assert client.post(reverse("login"), {"username": "annie", "password": "wrong"}).status_code == 200
    locked = client.post(reverse("login"), {"username": "annie", "password": "wrong"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    right = client.post(reverse("login"), {"username": "annie", "password": PASSWORD})
    assert right.status_code == 429 and "_auth_user_id" not in client.session


def test_a_lockout_of_one_user_leaves_other_users_alone(annotator, other_annotator, axes_on):
    client = Client()
    for _ in range(axes_on):
        client.post(reverse("login"), {"username": "annie", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "otto", "password": PASSWORD}).status_code == 302


def test_the_token_endpoint_shares_the_lockout_and_answers_json_429(annotator, axes_on):
    client = APIClient()
    for _ in range(axes_on - 1):
        assert get_token("annie", "wrong", client=client).status_code == 400
    locked = get_token("annie", "wrong", client=client)
    assert locked.status_code == 429 and locked.json()["retry_after"] == int(locked["Retry-After"]) > 0
    assert get_token("annie", client=client).status_code == 429
    assert not AuthToken.objects.exists()
    assert Client().post(reverse("login"), {"username": "annie", "password": PASSWORD}).status_code == 429


def test_sign_up_locks_out_after_repeated_failures(db, axes_on):
    from django.contrib.auth import get_user_model

    client = Client()
    bad = {"username": "newbie", "password1": "short", "password2": "short"}
    statuses = [client.post(reverse("signup"), bad).status_code for _ in range(axes_on)]
    assert statuses[:-1] == [200] * (axes_on - 1) and statuses[-1] == 429
    good = {"username": "newbie", "password1": "correct-horse-battery-1", "password2": "correct-horse-battery-1"}
    locked = client.post(reverse("signup"), good)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_a_successful_login_resets_the_count(annotator, axes_on):
    client = Client()
    for _ in range(axes_on - 1):
        client.post(reverse("login"), {"username": "annie", "password": "wrong"})
    assert client.post(reverse("login"), {"username": "annie", "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(axes_on - 1):
        assert client.post(reverse("login"), {"username": "annie", "password": "wrong"}).status_code == 200


def test_an_unreadable_rate_stops_the_process_at_start_up(tmp_path):
    from tests.dissection.test_settings import load_settings

    result = load_settings(SECRET_KEY="x" * 40, THROTTLE_CLAIM="lots", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "THROTTLE_CLAIM='lots' is not a rate" in result.stderr

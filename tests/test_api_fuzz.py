"""Schema fuzzing: schemathesis sends generated requests to every operation of the published OpenAPI
schema on the live test server, as an annotator and as a requester; any 5xx fails the test.

Deterministic (derandomized Hypothesis, a fixed example budget) so that CI fails for a reason, not
by chance; the budget keeps the whole run under two minutes on two cores."""
from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.factories import make_hits, make_job, make_user

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 12
# Ending the token's session midway would turn every later request into a 401 and test nothing.
SKIPPED = {("POST", "/api/v1/auth/logout/"), ("POST", "/api/v1/auth/logoutall/")}


def _token(base: str, username: str, password: str) -> str:
    response = requests.post(f"{base}/api/auth/token/", data={"username": username, "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["token"]


@pytest.fixture
def world(media_root):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4)
    make_hits(job)
    return job


def test_no_generated_request_makes_the_api_answer_5xx(live_server, world):
    from tests.factories import PASSWORD

    make_user("fuzz-annotator", qualified=True)
    make_user("fuzz-requester", requester=True)
    base = live_server.url
    started = time.monotonic()
    failures: list[str] = []
    # Both tokens first: the fuzzer's own calls to the token endpoint use up its per-address limit.
    tokens = {name: _token(base, name, PASSWORD) for name in ("fuzz-annotator", "fuzz-requester")}
    for username, token in tokens.items():
        headers = {"Authorization": f"Token {token}"}
        raw = requests.get(f"{base}/api/schema/?format=json", headers=headers, timeout=30)
        raw.raise_for_status()
        schema = schemathesis.openapi.from_dict(raw.json())
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue

            @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def call(case):
                response = case.call(base_url=base, headers=headers, timeout=30)  # noqa: B023 (run at once, in this loop)
                assert response.status_code < 500, (
                    f"{username}: {case.method} {case.formatted_path} query={case.query} body={case.body!r} "  # noqa: B023
                    f"-> {response.status_code}")

            try:
                call()
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
    assert failures == []
    assert time.monotonic() - started < 120

"""Who reaches what: anonymous, the annotator, another annotator, a requester and an admin,
against every crowd page and API endpoint."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import make_project
from units.crowd.models import Assignment
from units.crowd.services import assignment_claim
from units.crowd.verify import hit_publish_verify

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "annotator", "other", "requester", "admin"]
LOGIN = "login"  # a redirect to the sign-in page

# (method, url template, expected status per persona in PERSONAS order); {a} = the annotator's assignment id
PAGES = [
    ("get", "/crowd/", [LOGIN, 200, 200, 200, 200]),
    ("get", "/crowd/instructions/", [LOGIN, 200, 200, 200, 200]),
    ("get", "/crowd/qualification/", [LOGIN, 200, 200, 200, 200]),
    ("get", "/crowd/qualification/{p}/", [LOGIN, 200, 200, 200, 200]),  # the lab's batch is open to the crowd
    ("get", "/crowd/qualification/{q}/", [LOGIN, 404, 404, 404, 200]),  # a project that offers them nothing
    # Someone else's assignment answers 404, like an unknown id: ids reveal nothing.
    ("get", "/crowd/assignments/{a}/", [LOGIN, 200, 404, 404, 404]),
    ("get", "/crowd/assignments/{v}/", [LOGIN, 404, 200, 404, 404]),  # a verify HIT, the other annotator's
    ("post", "/crowd/assignments/{v}/", [LOGIN, 404, 400, 404, 404]),  # no verdict posted: the form says so
    ("post", "/crowd/assignments/{a}/return/", [LOGIN, 302, 404, 404, 404]),
    ("post", "/crowd/assignments/{a}/skip/", [LOGIN, 302, 404, 404, 404]),
    ("post", "/crowd/next/", [LOGIN, 302, 302, 302, 302]),
    ("get", "/crowd/review/", [LOGIN, 403, 403, 200, 200]),
    ("get", "/crowd/review/hits/{h}/", [LOGIN, 403, 403, 200, 200]),
    ("post", "/crowd/review/decide/", [LOGIN, 403, 403, 302, 302]),
    ("get", "/crowd/review/annotators/", [LOGIN, 403, 403, 200, 200]),
    ("post", "/crowd/review/annotators/{u}/", [LOGIN, 403, 403, 302, 302]),
    ("get", "/crowd/review/settings/", [LOGIN, 403, 403, 200, 200]),
    ("post", "/crowd/review/settings/invites/", [LOGIN, 403, 403, 302, 302]),
    ("get", "/crowd/review/gold/", [LOGIN, 403, 403, 200, 200]),
    ("get", "/accounts/signup/", [200, 302, 302, 302, 302]),
    ("get", "/accounts/password_change/", [LOGIN, 200, 200, 200, 200]),
]
API = [
    ("/api/assignments/next/", [401, 201, 201, 403, 403]),  # requester/admin are not qualified annotators
    ("/api/assignments/{a}/submit/", [401, 200, 404, 404, 404]),
    ("/api/assignments/{a}/return/", [401, 200, 404, 404, 404]),
    ("/api/assignments/{a}/skip/", [401, 200, 404, 404, 404]),
    # {a} is a labelling HIT: its owner gets 409 (answer it with a word), everyone else 404.
    ("/api/assignments/{a}/verdict/", [401, 409, 404, 404, 404]),
    ("/api/assignments/{v}/verdict/", [401, 404, 200, 404, 404]),  # {v}: the other annotator's verify HIT
    ("/api/hit-batches/verify/", [401, 403, 403, 400, 400]),  # an empty body: requesters get a validation error
]


@pytest.fixture
def world(annotator, other_annotator, requester, admin, hits):
    assignment = assignment_claim(worker=annotator)
    users = {"anonymous": None, "annotator": annotator, "other": other_annotator, "requester": requester,
             "admin": admin}
    # A verify HIT taken by the other annotator.
    batch = hit_publish_verify(layers=[assignment.hit.unit.layer], sources=["iou"])
    now = timezone.now()
    verify = Assignment.objects.create(hit=batch.hits.first(), worker=other_annotator, accepted_at=now,
                                       deadline=now + timedelta(minutes=10))
    return {"users": users, "a": assignment.pk, "h": assignment.hit_id, "u": annotator.pk, "v": verify.pk,
            "p": assignment.hit.batch.project_id, "q": make_project("elsewhere").pk}


@pytest.mark.parametrize("method, url, expected", PAGES, ids=[f"{m} {u}" for m, u, _ in PAGES])
@pytest.mark.parametrize("persona_index", range(len(PERSONAS)), ids=PERSONAS)
def test_pages(world, method, url, expected, persona_index):
    persona = PERSONAS[persona_index]
    client = Client()
    if world["users"][persona] is not None:
        client.force_login(world["users"][persona])
    data = {"action": "qualify", "project": world["p"]} if "annotators" in url else {}
    response = getattr(client, method)(url.format(**world), data)
    want = expected[persona_index]
    if want == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), persona
    else:
        assert response.status_code == want, f"{persona} {method} {url}: {response.status_code}"
        if want == 302:
            assert not response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url, expected", API, ids=[u for u, _ in API])
@pytest.mark.parametrize("persona_index", range(len(PERSONAS)), ids=PERSONAS)
def test_api(world, url, expected, persona_index):
    persona = PERSONAS[persona_index]
    client = APIClient()
    if world["users"][persona] is not None:
        client.force_authenticate(world["users"][persona])
    body = ({"word": "seven", "category": "object"} if url.endswith("submit/")
            else {"verdict": "yes"} if url.endswith("verdict/") else {})
    response = client.post(url.format(**world), body, format="json")
    assert response.status_code == expected[persona_index], f"{persona} {url}: {response.content[:200]}"

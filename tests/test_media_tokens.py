"""API token clients read the picture URLs the API hands them, under the same rule as the session:
the annotator holding the HIT and the members of its project; another annotator's or a made-up token gets nothing."""
import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, lab_project, make_hits, make_job, make_user

pytestmark = pytest.mark.django_db


def token_client(username: str) -> APIClient:
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


@pytest.fixture
def world(media_root):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4, write_pictures=True)
    make_hits(job)
    make_user("holder", qualified=True)
    make_user("other", qualified=True)
    make_user("req", requester=True)
    return job


def _get(client, url):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body


def test_the_annotator_reads_the_pictures_the_api_handed_out_with_the_token_alone(world):
    holder = token_client("holder")
    payload = holder.post("/api/assignments/next/").json()
    urls = [u for p in payload["exemplars"] for u in (p["picture_url"], p["plain_url"])]
    for url in urls:
        status, body = _get(holder, url)
        assert status == 200 and body[:2] in (b"\xff\xd8", b"\x89P"), url
    other = token_client("other")
    requester = token_client("req")
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token " + "a" * 64)
    for url in urls:
        assert _get(other, url)[0] == 404  # not theirs: the same answer as an unknown id
        assert _get(requester, url)[0] == 200
        assert _get(forged, url)[0] == 403
        assert _get(APIClient(), url)[0] == 403


def test_media_files_take_a_requesters_token_and_refuse_an_annotators(world, media_root):
    from units.results.models import ExportJob

    (media_root / "exports").mkdir(exist_ok=True)
    (media_root / "exports" / "x.csv").write_text("a,b\n")
    ExportJob.objects.create(project=lab_project(), kind=ExportJob.Kind.values[0], file="exports/x.csv",
                             status=ExportJob.Status.SUCCEEDED)  # an export of the requester's project
    assert _get(token_client("req"), "/media/exports/x.csv")[0] == 200
    assert _get(token_client("holder"), "/media/exports/x.csv")[0] == 403

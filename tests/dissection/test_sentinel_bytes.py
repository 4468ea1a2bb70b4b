"""Attack: an annotator cannot tell a HIT's sentinels from its top images by the pictures' bytes, nor by
the ids the annotations API gives back after submitting."""
import io

import pytest
from PIL import Image
from rest_framework.test import APIClient

from tests.factories import make_hits, make_registered_pipeline, make_user
from units.crowd.models import HitBatch
from units.dissection.models import DissectionJob, Exemplar
from units.dissection.services import job_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(tiny_mixture_dir, media_root, django_capture_on_commit_callbacks):
    """A job run by the engine end to end (pictures rendered as in production), its units as HITs
    that mix 3 sentinels into each strip."""
    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=4)
    with django_capture_on_commit_callbacks(execute=True):
        job_start(job=job)
    job.refresh_from_db()
    assert job.status == DissectionJob.Status.SUCCEEDED, job.error_message
    hits = make_hits(job)
    HitBatch.objects.filter(pk=hits[0].batch_id).update(sentinels=3)
    return job, hits


def _annotator_client():
    client = APIClient()
    client.force_login(make_user("annie", qualified=True))
    return client


def test_every_picture_of_a_hit_has_the_same_number_of_bytes(published):
    client = _annotator_client()
    seen_sentinels = 0
    for _ in range(4):  # several HITs, as the attacker did
        body = client.post("/api/assignments/next/").json()
        sizes, kinds = [], []
        for picture in body["exemplars"]:
            response = client.get(picture["picture_url"])
            assert response.status_code == 200
            raw = b"".join(response.streaming_content)
            Image.open(io.BytesIO(raw)).load()  # still a valid picture
            sizes.append(len(raw))
            kinds.append(Exemplar.objects.get(public_id=picture["id"]).kind)
        assert "sentinel" in kinds and "top" in kinds
        seen_sentinels += kinds.count("sentinel")
        assert len(set(sizes)) == 1, list(zip(kinds, sizes))
        client.post(f"/api/assignments/{body['assignment']['id']}/skip/")
    assert seen_sentinels >= 4


def test_the_annotations_api_gives_annotators_no_ids_to_order_or_compare(published, requester):
    client = _annotator_client()
    body = client.post("/api/assignments/next/").json()
    marked = [p["id"] for p in body["exemplars"]]  # every picture, sentinels included
    done = client.post(f"/api/assignments/{body['assignment']['id']}/submit/",
                       {"word": "seven", "category": "object", "non_fitting": marked}, format="json")
    assert done.status_code == 200, done.json()
    mine = client.get("/api/annotations/").json()["results"][0]
    # What is stored is the top images among the marks: handing that back would name the sentinels.
    assert "non_fitting" not in mine
    staff = APIClient()
    staff.force_login(requester)
    theirs = staff.get("/api/annotations/").json()["results"][0]["non_fitting"]
    tops = {p for p in marked if Exemplar.objects.get(public_id=p).kind == "top"}
    assert set(theirs) == tops  # opaque ids, not the consecutive internal ones
    assert not set(theirs) & {str(pk) for pk in Exemplar.objects.values_list("pk", flat=True)}

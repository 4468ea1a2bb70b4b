"""No N+1: the overview, the exports form and the list APIs make the same number of queries at two sizes.

Each endpoint is measured once with a few rows and once with several times as many; the counts must be equal
(a count that grows with the rows is an N+1, whatever its absolute value).
"""
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import make_hits, make_job
from tests.results.helpers import answer
from units.crowd.models import HitBatch
from units.results.models import ExportJob
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


def grow(n: int, annotator, other_annotator, requester) -> None:
    """n more jobs, each with two layers of n units, HITs, answers, an aggregation run and an export row."""
    for _ in range(n):
        job = make_job(layers={"conv3": n, "conv4": n}, exemplars_per_unit=2)
        hits = make_hits(job)
        for hit in hits:
            answer(hit, annotator, "dog", "object")
            answer(hit, other_annotator, "cat", "object")
        for layer in job.layer_set.all():
            aggregation_run_layer(layer=layer, adapt=False)
            ExportJob.objects.create(
                project=job.project, kind=ExportJob.Kind.UNITS_CSV, layer=layer, job=job, created_by=requester
            )


def count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


URLS = ["/results/", "/results/exports/", "/api/hit-batches/", "/api/comparisons/"]


@pytest.mark.parametrize("url", URLS)
def test_query_count_does_not_grow_with_rows(url, annotator, other_annotator, requester):
    client = Client()
    client.force_login(requester)
    grow(2, annotator, other_annotator, requester)
    client.get(url)  # the first page a user opens chooses (and stores) their current project
    small = count(client, url)
    grow(3, annotator, other_annotator, requester)
    assert HitBatch.objects.count() == 5
    large = count(client, url)
    assert large == small, f"{url}: {small} queries with 2 jobs, {large} with 5"


def test_prefetched_comparisons_equal_the_one_layer_answer(annotator, other_annotator, requester):
    """The list's batched reads give exactly what each layer's own (unbatched) endpoint computes."""
    client = Client()
    client.force_login(requester)
    grow(2, annotator, other_annotator, requester)
    listed = client.get("/api/comparisons/").json()["results"]
    assert len(listed) == 4
    for row in listed:
        assert row == client.get(f"/api/comparisons/{row['layer']}/").json()
    assert client.get("/api/hit-batches/").json()["results"][0]["hits"] == 4

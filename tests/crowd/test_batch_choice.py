"""An annotator picks the batch to work on from the home page (a verify batch before the label HITs
published earlier, say), stays in it from HIT to HIT, and falls back to any batch once it is empty."""
import pytest
from django.urls import reverse

from units.crowd.models import Assignment, HitBatch
from units.crowd.publishing import PublishSettings
from units.crowd.verify import hit_publish_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def annie(client, annotator):
    client.force_login(annotator)
    return client


@pytest.fixture
def verify_batch(job, hits):
    hit_publish_verify(layers=list(job.layer_set.all()), sources=["iou"],
                       settings=PublishSettings.for_verify(assignments_per_hit=1))
    return HitBatch.objects.get(kind="verify")


def test_home_lists_each_batch_with_its_kind_and_a_start_button(annie, verify_batch, hits):
    page = annie.get(reverse("crowd:home")).content.decode()
    table = page.split('id="batches"')[1].split("</table>")[0]
    assert "verify a label" in table and "label a unit" in table
    assert f'id="start-batch-{verify_batch.pk}"' in table and f'id="start-batch-{hits[0].batch_id}"' in table


def test_choosing_the_verify_batch_gives_verify_hits_until_it_is_empty_then_any(annie, annotator, verify_batch):
    response = annie.post(reverse("crowd:next"), {"batch": verify_batch.pk})
    kinds = []
    for _ in range(verify_batch.hits.count()):
        assignment = Assignment.objects.get(worker=annotator, status=Assignment.Status.ACCEPTED)
        kinds.append(assignment.hit.batch_id)
        response = annie.post(reverse("crowd:work", args=[assignment.pk]), {"verdict": "yes"})
        assert response.status_code == 302
    assert kinds == [verify_batch.pk] * verify_batch.hits.count()
    # the verify batch is done for annie: the next HIT comes from any batch, and the page says so
    nxt = Assignment.objects.get(worker=annotator, status=Assignment.Status.ACCEPTED)
    assert nxt.hit.batch_id != verify_batch.pk
    assert "no HIT left for you" in annie.get(reverse("crowd:home")).content.decode()


@pytest.mark.parametrize("batch", ["", "abc", "-1", "99999999999999999999999", "424242"])
def test_a_made_up_batch_is_no_error(annie, annotator, hits, batch):
    response = annie.post(reverse("crowd:next"), {"batch": batch})
    assert response.status_code == 302
    assert Assignment.objects.filter(worker=annotator, status=Assignment.Status.ACCEPTED).count() == 1

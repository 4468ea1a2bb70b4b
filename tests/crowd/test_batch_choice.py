"""An annotator picks the batch to work on from the home page (a verify batch before the label HITs
published earlier, say), stays in it from HIT to HIT, and falls back to any batch once it is empty."""
import pytest
from django.urls import reverse

from units.crowd.models import Assignment, Hit, HitBatch
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


def _kinds_section(page: str) -> str:
    return page.split('id="kinds"')[1].split("</div>")[0]


def test_a_new_annotator_is_offered_verify_work_first_with_counts_and_a_start_button_for_each_kind(
        annie, verify_batch, hits):
    page = annie.get(reverse("crowd:home")).content.decode()
    kinds = _kinds_section(page)
    assert kinds.index('id="kind-verify"') < kinds.index('id="kind-label"')
    verify_left = Hit.objects.filter(kind="verify").count()
    label_left = Hit.objects.filter(kind="label").count()
    assert f'<strong id="kind-left-verify">{verify_left}</strong>' in kinds
    assert f'<strong id="kind-left-label">{label_left}</strong>' in kinds
    assert 'id="start-verify"' in kinds and 'id="start-label"' in kinds
    assert "recommended to start" in kinds.split('id="kind-label"')[0]
    assert "recommended to start" not in kinds.split('id="kind-label"')[1]
    # "any batch" is no longer what the page offers first: the verify button has the focus.
    assert 'autofocus>Start verifying' in " ".join(kinds.split())
    assert 'id="start-working" autofocus' not in page


def test_an_experienced_annotator_sees_labelling_first_and_nothing_recommended(annie, verify_batch, monkeypatch):
    from units.crowd.views import work

    monkeypatch.setattr(work, "NEW_ANNOTATOR_HITS", 0)
    page = annie.get(reverse("crowd:home")).content.decode()
    kinds = _kinds_section(page)
    assert kinds.index('id="kind-label"') < kinds.index('id="kind-verify"')
    assert "recommended to start" not in kinds and 'id="start-working" autofocus' in page


def test_choosing_verify_work_gives_verify_hits_from_every_verify_batch_then_any(annie, annotator, job, verify_batch):
    second = hit_publish_verify(layers=list(job.layer_set.all()), sources=["requester"],
                                labels={h.unit_id: "blob" for h in verify_batch.hits.all()},
                                settings=PublishSettings.for_verify(assignments_per_hit=1))
    expected = Hit.objects.filter(kind="verify").count()
    assert second.pk and expected > verify_batch.hits.count()
    annie.post(reverse("crowd:next"), {"kind": "verify"})
    batches = []
    for _ in range(expected):
        assignment = Assignment.objects.get(worker=annotator, status=Assignment.Status.ACCEPTED)
        assert assignment.hit.kind == "verify"
        batches.append(assignment.hit.batch_id)
        assert annie.post(reverse("crowd:work", args=[assignment.pk]), {"verdict": "no"}).status_code == 302
    assert set(batches) == {verify_batch.pk, second.pk}
    nxt = Assignment.objects.get(worker=annotator, status=Assignment.Status.ACCEPTED)
    assert nxt.hit.kind == "label"
    assert "The verify work you chose has no HIT left for you" in annie.get(reverse("crowd:home")).content.decode()


@pytest.mark.parametrize("kind", ["", "paint", "VERIFY", "x" * 500])
def test_a_made_up_kind_is_no_error_and_gives_any_hit(annie, annotator, hits, kind):
    response = annie.post(reverse("crowd:next"), {"kind": kind})
    assert response.status_code == 302
    assert Assignment.objects.filter(worker=annotator, status=Assignment.Status.ACCEPTED).count() == 1


def test_without_verify_work_a_new_annotator_is_not_told_to_start_with_it(annie, hits):
    page = annie.get(reverse("crowd:home")).content.decode()
    kinds = _kinds_section(page)
    assert '<strong id="kind-left-verify">0</strong>' in kinds and 'id="start-verify"' not in kinds
    assert "recommended to start" not in kinds and "Start with verify HITs" not in page
    assert 'id="start-working" autofocus' in page

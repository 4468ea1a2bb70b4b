"""Verify HITs under concurrency on PostgreSQL: publishers racing create each HIT once, and a crowd
answering labelling and verify HITs at once never over-assigns either kind."""
from collections import Counter

import pytest
from django.db import connection
from django.db.models import F

from tests.conftest import need_service
from tests.crowd.test_concurrency import run_together
from tests.factories import make_hits, make_job, make_user
from units.crowd.models import Annotation, Assignment, Hit
from units.crowd.services import annotation_submit, assignment_claim
from units.crowd.publishing import PublishSettings
from units.crowd.verify import hit_publish_verify, verdict_submit
from units.dissection.models import Unit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_publishers_racing_create_each_verify_hit_once():
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    job = make_job(layers={"conv3": 6}, exemplars_per_unit=2)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # every IoU label above 0.04
    layer = job.layer_set.get()
    run_together(lambda: hit_publish_verify(layers=[layer], sources=["iou"],
                                            settings=PublishSettings.for_verify(sentinels=2)), [()] * 6)
    per_key = Counter(Hit.objects.values_list("unit_id", "label_source"))
    assert set(per_key.values()) == {1}
    assert Counter(source for _, source in per_key) == {"iou": 6, "sentinel": 2}


def test_a_crowd_answering_both_kinds_at_once_fills_every_slot_exactly():
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=2)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # every IoU label above 0.04
    make_hits(job, assignments=2)
    hit_publish_verify(layers=[job.layer_set.get()], sources=["iou"],
                       settings=PublishSettings.for_verify(assignments_per_hit=2))
    workers = [make_user(f"v{i}", qualified=True) for i in range(8)]

    def work(worker):
        while (a := assignment_claim(worker=worker)) is not None:
            if a.hit.kind == "verify":
                verdict_submit(assignment_id=a.pk, worker=worker, verdict="yes")
            else:
                annotation_submit(assignment_id=a.pk, worker=worker, word="seven", category="object")

    run_together(work, [(w,) for w in workers] * 2)  # two tabs each
    held = Counter(Assignment.objects.filter(status="submitted").values_list("hit_id", flat=True))
    assert held == {hit.pk: 2 for hit in Hit.objects.all()}
    assert Annotation.objects.exclude(verdict="").count() == 6 and Annotation.objects.filter(verdict="").count() == 6

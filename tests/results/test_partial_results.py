"""Requesters see results while answers arrive: with fewer annotators than assignments per HIT no HIT
completes, yet every answer is aggregated, flagged with how many answers each unit has; what one
answer cannot tell (agreement, interpretable) is not shown as 1.00. "Aggregate now" answers at once."""
import threading
import time

import pytest
from django.test import Client

from tests.factories import make_hits, make_job, make_user
from units.crowd.services import annotation_submit, assignment_claim
from units.results.models import UnitAggregate

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def world(media_root):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4)
    hits = make_hits(job, assignments=3)  # three answers wanted per HIT; one annotator will come
    return job, hits


def test_one_answer_per_hit_is_aggregated_and_flagged_as_one_answer(world, django_capture_on_commit_callbacks):
    job, hits = world
    annie = make_user("annie", qualified=True)
    assignment = assignment_claim(worker=annie)
    with django_capture_on_commit_callbacks(execute=True):
        annotation_submit(assignment_id=assignment.pk, worker=annie, word="tree", category="object")
    aggregate = UnitAggregate.objects.get(unit=assignment.hit.unit)
    assert (aggregate.crowd_word, aggregate.n_annotations) == ("tree", 1)
    assert not aggregate.agreement_known

    requester = Client()
    requester.force_login(make_user("rita", requester=True))
    layer = job.layer_set.get()
    page = requester.get(f"/results/layers/{layer.pk}/").content.decode()
    import re

    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if ">tree" in r)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    word, agreement = cells[1], cells[3]  # Unit, Crowd word, Category, Agreement, Precision, Answers, ...
    assert "✓" not in word
    assert "1 answer so far" in agreement and "1.00" not in agreement
    unit_page = requester.get(f"/results/units/{assignment.hit.unit_id}/").content.decode()
    assert "too few answers" in unit_page and "agreement 1.00" not in unit_page


def test_aggregate_now_answers_before_the_run_ends(world, settings, monkeypatch, django_capture_on_commit_callbacks):
    from annotate_site.celery import app

    job, _ = world
    settings.BACKGROUND_TASKS_INLINE = False  # as in a real run without a broker
    release, started, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_run(*args, **kwargs):  # an aggregation that takes its time
        started.set()
        release.wait(10)
        finished.set()

    import tasks.results  # noqa: F401  (registers the task)

    monkeypatch.setattr(app.tasks["tasks.results.aggregate_layer"], "run", slow_run)
    requester = Client()
    requester.force_login(make_user("rita", requester=True))
    layer = job.layer_set.get()
    begun = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = requester.post(f"/results/layers/{layer.pk}/aggregate/")
    took = time.monotonic() - begun
    assert response.status_code == 302 and took < 3
    assert started.wait(5) and not finished.is_set()  # the run goes on after the answer
    release.set()
    assert finished.wait(5)

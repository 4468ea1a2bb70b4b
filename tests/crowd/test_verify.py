"""Verify HITs: publishing (sources, gold, sentinels, no duplicates), the yes/no/unsure answer through the
service, the page and the API, and the rules around it (other annotators, wrong HIT kind, bad input)."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_hits, make_job
from units.crowd.errors import Conflict, InvalidAnswer, NotAllowed, NotFound
from units.crowd.models import Annotation, Assignment, Hit, HitBatch
from units.crowd.errors import PublishError
from units.crowd.publishing import PublishSettings, hit_publish
from units.crowd.services import annotation_submit, assignment_claim
from units.crowd.verify import hit_publish_verify, label_matches_gold, verdict_submit
from units.dissection.models import Unit
from units.results.models import UnitAggregate

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(db):
    # 4 units; unit u's IoU label is digit u ("0".."3"), each above the interpretable IoU; unit 3 is dead.
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=6)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)
    Unit.objects.filter(layer__job=job, index=3).update(max_activation=0.0)
    return job


def layer_of(job):
    return job.layer_set.get()


def take(hit, worker):
    now = timezone.now()
    return Assignment.objects.create(hit=hit, worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5))


def test_iou_verify_hits_propose_each_live_units_iou_label_once(job):
    batch = hit_publish_verify(layers=[layer_of(job)], sources=["iou"])
    hits = list(batch.hits.order_by("unit__index"))
    assert [(h.kind, h.label_source, h.proposed_label) for h in hits] == [("verify", "iou", str(i)) for i in range(3)]
    assert batch.kind == "verify" and batch.report.skipped_dead == 1
    again = hit_publish_verify(layers=[layer_of(job)], sources=["iou"])
    assert again.pk is None and again.report.skipped_existing == 3
    assert Hit.objects.count() == 3


def test_an_iou_label_at_or_below_the_interpretable_threshold_is_not_proposed(job):
    """Its concept is the unit's best, but an IoU of 0.04 or less names no detector: nobody is asked about it."""
    Unit.objects.filter(layer__job=job, index=0).update(iou_score=0.04)
    Unit.objects.filter(layer__job=job, index=1).update(iou_score=0.0401)
    batch = hit_publish_verify(layers=[layer_of(job)], sources=["iou"])
    assert sorted(batch.hits.values_list("unit__index", "proposed_label")) == [(1, "1"), (2, "2")]
    assert batch.report.skipped_no_label == 1


def test_labelling_and_verify_hits_of_one_unit_live_side_by_side(job):
    hit_publish(layers=[layer_of(job)])
    hit_publish_verify(layers=[layer_of(job)], sources=["iou"])
    assert Hit.objects.filter(kind="label").count() == 3 and Hit.objects.filter(kind="verify").count() == 3
    assert hit_publish(layers=[layer_of(job)]).pk is None  # a label HIT per unit still, never two


def test_crowd_verify_hits_propose_the_aggregated_word_and_skip_units_without_one(job):
    units = list(Unit.objects.filter(layer__job=job).order_by("index"))
    UnitAggregate.objects.create(unit=units[0], crowd_word="zero", category="object")
    UnitAggregate.objects.create(unit=units[1], crowd_word="", category="none")  # no clear concept
    batch = hit_publish_verify(layers=[layer_of(job)], sources=["crowd"])
    assert list(batch.hits.values_list("unit__index", "proposed_label")) == [(0, "zero")]
    assert batch.report.skipped_no_label == 2


def test_a_requesters_labels_are_verified_only_where_given(job):
    unit = Unit.objects.get(layer__job=job, index=1)
    batch = hit_publish_verify(layers=[layer_of(job)], sources=["requester"], labels={unit.pk: "  curvy  stroke "})
    assert list(batch.hits.values_list("unit_id", "proposed_label", "label_source")) == [
        (unit.pk, "curvy stroke", "requester")]


@pytest.mark.parametrize("kwargs, message", [
    ({"sources": []}, "at least one label source"),
    ({"sources": ["oracle"]}, "Unknown label source"),
    ({"sources": ["requester"]}, "needs the labels"),
    ({"sources": ["requester"], "labels": {"../1": "dog"}}, "keyed by unit id"),
    ({"sources": ["requester"], "labels": {1: " "}}, "1 to 200 characters"),
    ({"sources": ["requester"], "labels": {1: "x" * 201}}, "1 to 200 characters"),
    ({"sources": ["iou"], "assignments_per_hit": 0}, "between 1 and 100"),
    ({"sources": ["iou"], "reward": "lots"}, "not an amount"),
])
def test_bad_publish_options_are_refused_and_leave_nothing_behind(job, kwargs, message):
    with pytest.raises(PublishError, match=message):
        hit_publish_verify(layers=[layer_of(job)], sources=kwargs.pop("sources"), labels=kwargs.pop("labels", None),
                           settings=PublishSettings.for_verify(**kwargs))
    assert not Hit.objects.exists() and not HitBatch.objects.exists()


def test_sentinel_hits_propose_a_concept_outside_the_units_best_gold_and_crowd_words(job):
    units = list(Unit.objects.filter(layer__job=job).order_by("index"))
    units[0].is_gold, units[0].gold_word, units[0].gold_category = True, "0|zero", "object"
    units[0].save()
    UnitAggregate.objects.create(unit=units[0], crowd_word="5", category="object")
    batch = hit_publish_verify(layers=[layer_of(job)], sources=["iou"],
                               settings=PublishSettings.for_verify(sentinels=2))
    sentinels = list(batch.hits.filter(label_source="sentinel").select_related("unit"))
    assert len(sentinels) == 2
    assert sentinels[0].unit == units[0]  # the gold unit first: its decoy is surely wrong
    for hit in sentinels:
        assert hit.proposed_label in {str(d) for d in range(10)}  # from the dataset's vocabulary
        assert hit.proposed_label != hit.unit.iou_label and not hit.is_gold
    assert sentinels[0].proposed_label not in {"0", "5"}
    # Republishing finds them: no second sentinel on a unit, and none beyond the wanted number.
    assert hit_publish_verify(layers=[layer_of(job)], sources=["iou"],
                              settings=PublishSettings.for_verify(sentinels=2)).pk is None


def test_the_command_publishes_verify_hits_of_both_sources(job, capsys):
    UnitAggregate.objects.create(unit=Unit.objects.get(layer__job=job, index=2), crowd_word="two",
                                 category="object")
    call_command("publish_hits", "--job", str(job.pk), "--type", "verify", "--source", "iou", "crowd")
    assert "4 verify HIT(s) created (1 crowd, 3 iou)" in capsys.readouterr().out
    call_command("publish_hits", "--job", str(job.pk), "--type", "verify", "--source", "iou")
    assert "skipped 3 that already had one" in capsys.readouterr().out
    with pytest.raises(CommandError, match="between 0 and 10"):
        call_command("publish_hits", "--job", str(job.pk), "--type", "verify", "--sentinels", "11")


# --- answering ---------------------------------------------------------------------------------------


@pytest.fixture
def verify_hits(job):
    return list(hit_publish_verify(layers=[layer_of(job)], sources=["iou"],
                                   settings=PublishSettings.for_verify(assignments_per_hit=2))
                .hits.order_by("unit__index"))


def test_a_verdict_submits_the_assignment_and_a_repeat_returns_the_first(verify_hits, annotator):
    assignment = take(verify_hits[0], annotator)
    first = verdict_submit(assignment_id=assignment.pk, worker=annotator, verdict="YES ")
    assignment.refresh_from_db()
    assert (first.verdict, assignment.status, first.gold_correct) == ("yes", "submitted", None)
    assert verdict_submit(assignment_id=assignment.pk, worker=annotator, verdict="yes").pk == first.pk
    with pytest.raises(Conflict, match="different answer"):
        verdict_submit(assignment_id=assignment.pk, worker=annotator, verdict="no")


@pytest.mark.parametrize("verdict", ["", "maybe", "y", None, 1])
def test_a_bad_verdict_is_refused_and_nothing_is_written(verify_hits, annotator, verdict):
    assignment = take(verify_hits[0], annotator)
    with pytest.raises(InvalidAnswer, match="yes, no or unsure"):
        verdict_submit(assignment_id=assignment.pk, worker=annotator, verdict=verdict)
    assignment.refresh_from_db()
    assert assignment.status == "accepted" and not Annotation.objects.exists()


def test_nobody_answers_someone_elses_verify_hit(verify_hits, annotator, other_annotator):
    assignment = take(verify_hits[0], annotator)
    with pytest.raises(NotFound):
        verdict_submit(assignment_id=assignment.pk, worker=other_annotator, verdict="yes")
    assert not Annotation.objects.exists()


def test_each_kind_of_hit_takes_only_its_own_answer(job, verify_hits, annotator):
    label_hit = make_hits(job)[0]
    with pytest.raises(Conflict, match="verify HIT"):
        annotation_submit(assignment_id=take(verify_hits[0], annotator).pk, worker=annotator, word="zero",
                          category="object")
    with pytest.raises(Conflict, match="labelling HIT"):
        verdict_submit(assignment_id=take(label_hit, annotator).pk, worker=annotator, verdict="yes")
    assert not Annotation.objects.exists()


def test_gold_verify_hits_know_the_answer_from_the_units_ground_truth(job, annotator, other_annotator):
    units = list(Unit.objects.filter(layer__job=job).order_by("index"))
    units[0].is_gold, units[0].gold_word, units[0].gold_category = True, "zero|0", "object"  # IoU label "0": right
    units[1].is_gold, units[1].gold_word, units[1].gold_category = True, "7", "object"  # IoU label "1": wrong
    for unit in units[:2]:
        unit.save()
    hits = list(hit_publish_verify(layers=[layer_of(job)], sources=["iou"]).hits.order_by("unit__index"))
    assert [h.is_gold for h in hits] == [True, True, False]
    assert (label_matches_gold("0", units[0]), label_matches_gold("1", units[1]), label_matches_gold("2", units[2])) \
        == (True, False, None)
    answers = {
        (0, annotator): "yes", (0, other_annotator): "unsure",  # unsure on a known answer is not credited
        (1, annotator): "no", (1, other_annotator): "yes",
    }
    got = {}
    for (i, worker), verdict in answers.items():
        got[(i, worker)] = verdict_submit(assignment_id=take(hits[i], worker).pk, worker=worker,
                                          verdict=verdict).gold_correct
    assert got == {(0, annotator): True, (0, other_annotator): False, (1, annotator): True,
                   (1, other_annotator): False}


def test_accepting_a_sentinel_label_flags_the_annotator_and_rejecting_it_does_not(job, annotator, other_annotator):
    sentinel = hit_publish_verify(layers=[layer_of(job)], sources=["iou"],
                                  settings=PublishSettings.for_verify(sentinels=1)).hits.get(
        label_source="sentinel")
    ok = verdict_submit(assignment_id=take(sentinel, annotator).pk, worker=annotator, verdict="no")
    bad = verdict_submit(assignment_id=take(sentinel, other_annotator).pk, worker=other_annotator, verdict="yes")
    assert (ok.sentinels_shown, ok.sentinels_missed, bad.sentinels_missed) == (1, 0, 1)
    annotator.annotator_profile.refresh_from_db()
    other_annotator.annotator_profile.refresh_from_db()
    assert annotator.annotator_profile.flagged_at is None
    assert "sentinel label" in other_annotator.annotator_profile.flag_reason


# --- the page and the API ------------------------------------------------------------------------


def test_the_work_page_shows_the_label_and_top_pictures_and_takes_the_verdict(client, job, annotator):
    hit_publish_verify(layers=[layer_of(job)], sources=["iou"],
                       settings=PublishSettings.for_verify(sentinels=1, exemplars_shown=4))
    assignment = assignment_claim(worker=annotator)
    client.login(username=annotator.username, password=PASSWORD)
    page = client.get(reverse("crowd:work", args=[assignment.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "crowd/verify.html" in [t.name for t in page.templates]
    assert f'id="proposed-label" class="proposed">{assignment.hit.proposed_label}<' in html
    strip = html.split('id="exemplars"')[1].split("</div>")[0]
    assert strip.count("<img ") == 4 and 'id="verdict-unsure"' in html
    bad = client.post(reverse("crowd:work", args=[assignment.pk]), {"verdict": "perhaps"})
    assert bad.status_code == 400 and "Answer yes, no or unsure" in bad.content.decode()
    assert not Annotation.objects.exists()
    done = client.post(reverse("crowd:work", args=[assignment.pk]), {"verdict": "no"})
    assert done.status_code == 302
    assert Annotation.objects.get(assignment=assignment).verdict == "no"


def test_the_api_hands_out_verify_hits_and_takes_their_verdicts(job, annotator):
    hit_publish_verify(layers=[layer_of(job)], sources=["iou"])
    api = APIClient()
    api.force_authenticate(annotator)
    claimed = api.post("/api/assignments/next/").json()
    # Which HIT comes first is the queue's choice; its proposed label is that unit's IoU label.
    assert claimed["hit"]["kind"] == "verify"
    assert claimed["hit"]["proposed_label"] == Hit.objects.get(pk=claimed["hit"]["id"]).unit.iou_label
    pk = claimed["assignment"]["id"]
    assert api.post(f"/api/assignments/{pk}/verdict/", {"verdict": "maybe"}, format="json").status_code == 400
    assert api.post(f"/api/assignments/{pk}/submit/", {"word": "x", "category": "object"},
                    format="json").status_code == 409
    done = api.post(f"/api/assignments/{pk}/verdict/", {"verdict": "yes"}, format="json")
    assert done.status_code == 200 and done.json()["verdict"] == "yes" and done.json()["status"] == "submitted"


def test_requesters_publish_verify_hits_through_the_api(job, requester):
    api = APIClient()
    api.force_authenticate(requester)
    made = api.post("/api/hit-batches/verify/", {"layers": [layer_of(job).pk], "sources": ["iou"]}, format="json")
    assert made.status_code == 201 and made.json()["kind"] == "verify" and made.json()["hits"] == 3
    again = api.post("/api/hit-batches/verify/", {"layers": [layer_of(job).pk], "sources": ["iou"]}, format="json")
    assert again.status_code == 200 and "skipped 3" in again.json()["detail"]
    bad = api.post("/api/hit-batches/verify/", {"layers": [layer_of(job).pk], "sources": ["oracle"]}, format="json")
    assert bad.status_code == 400 and Hit.objects.count() == 3
    bad_labels = api.post("/api/hit-batches/verify/", {"layers": [layer_of(job).pk], "sources": ["requester"],
                                                        "labels": {"abc": "dog"}}, format="json")
    assert bad_labels.status_code == 400


def test_the_publish_page_publishes_verify_hits_of_both_sources(client, job, requester):
    UnitAggregate.objects.create(unit=Unit.objects.get(layer__job=job, index=0), crowd_word="zero",
                                 category="object")
    client.login(username=requester.username, password=PASSWORD)
    form = {"layers": [layer_of(job).pk], "assignments_per_hit": 3, "reward": "0.02", "lifetime_hours": 24,
            "assignment_minutes": 5, "auto_approval_hours": 72, "exemplars_shown": 15, "sentinels": 0,
            "skip_dead": "on", "hit_type": "verify", "label_sources": ["iou", "crowd"]}
    response = client.post(reverse("publish"), form, follow=True)
    assert "4 verify HIT(s) created (1 crowd, 3 iou)" in response.content.decode()
    none = client.post(reverse("publish"), {**form, "label_sources": []})
    assert none.status_code == 200 and "at least one label source" in none.content.decode()
    assert Hit.objects.count() == 4


def test_the_review_page_shows_the_proposed_label_and_the_verdicts(client, job, annotator, requester):
    hit = hit_publish_verify(layers=[layer_of(job)], sources=["iou"]).hits.order_by("pk").first()
    verdict_submit(assignment_id=take(hit, annotator).pk, worker=annotator, verdict="unsure")
    client.force_login(requester)
    html = client.get(reverse("crowd:review_hit", args=[hit.pk])).content.decode()
    assert f'id="review-proposed-label">{hit.proposed_label}<' in html and '<dd class="word">unsure</dd>' in html


# --- a unit's own labellers and its crowd label ----------------------------------------------------


def test_a_units_labeller_is_never_offered_nor_may_answer_the_verify_hit_of_its_crowd_label(job, annotator,
                                                                                            other_annotator):
    units = list(Unit.objects.filter(layer__job=job).order_by("index"))
    label_hit = hit_publish(layers=[layer_of(job)],
                            settings=PublishSettings(assignments_per_hit=2)).hits.get(unit=units[0])
    labelled = take(label_hit, annotator)
    annotation_submit(assignment_id=labelled.pk, worker=annotator, word="zero", category="object")
    Hit.objects.filter(kind="label").update(status="disposed")  # leave only verify HITs in the queue
    UnitAggregate.objects.create(unit=units[0], crowd_word="zero", category="object")
    hit_publish_verify(layers=[layer_of(job)], sources=["crowd", "iou"],
                       settings=PublishSettings.for_verify(assignments_per_hit=2))
    crowd_hit = Hit.objects.get(kind="verify", label_source="crowd", unit=units[0])

    offered = []
    while (assignment := assignment_claim(worker=annotator)) is not None:
        offered.append((assignment.hit.unit.index, assignment.hit.label_source))
        verdict_submit(assignment_id=assignment.pk, worker=annotator, verdict="yes")
    # Every IoU verify HIT, the labelled unit's included; never its crowd label.
    assert sorted(offered) == [(0, "iou"), (1, "iou"), (2, "iou")]
    other = assignment_claim(worker=other_annotator)
    assert other is not None  # someone who did not label unit 0 is offered the crowd label's HIT

    forced = take(crowd_hit, annotator)  # however the assignment came about, the answer is refused
    with pytest.raises(NotAllowed, match="own answer"):
        verdict_submit(assignment_id=forced.pk, worker=annotator, verdict="yes")
    assert not Annotation.objects.filter(assignment=forced).exists()

"""Aggregation runs stored per unit, annotator skill, adaptive redundancy, synonyms."""
import pytest

from tests.factories import make_hits, make_job, make_project, make_user
from tests.results.helpers import answer
from units.crowd.models import Assignment, Hit
from units.results.models import AggregationRun, AnnotatorSkill, SynonymEntry, UnitAggregate
from units.results import aggregation
from units.results.errors import ResultsError
from units.results.selectors import worker_skills
from units.results.services import aggregation_run_batch, aggregation_run_layer, synonym_set

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def workers(db):
    return [make_user(f"w{i}") for i in range(4)]


@pytest.fixture
def layer_with_hits(db):
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=10)
    hits = make_hits(job, assignments=3)
    return job.layer_set.get(), hits


def test_a_layer_run_stores_each_units_label_and_records_method_and_parameters(layer_with_hits, workers, settings):
    settings.RESULTS_ADAPTIVE_REDUNDANCY = False
    layer, hits = layer_with_hits
    a, b, c, _ = workers
    # unit 0 (IoU label "0", object, 0.02): the crowd says "zero"/"0" -> digit 0, object; precision (0.9+0.8+1)/3
    answer(hits[0], a, "zero", "object", non_fitting=(1,))
    answer(hits[0], b, "0", "object", non_fitting=(2, 3))
    answer(hits[0], c, "blob", "texture")
    # unit 1: two say no clear concept; precision (0.2 + 0.3 + 1.0) / 3 -> not interpretable
    answer(hits[1], a, "", "none", non_fitting=tuple(range(8)))
    answer(hits[1], b, "", "none", non_fitting=tuple(range(7)))
    answer(hits[1], c, "lines", "texture")
    # a rejected answer does not count
    answer(hits[1], workers[3], "1", "object", status=Assignment.Status.REJECTED)

    run = aggregation_run_layer(layer=layer)

    assert run.status == AggregationRun.Status.SUCCEEDED
    assert run.method == aggregation.METHOD
    assert run.parameters["interpretable_precision"] == 0.75
    assert (run.n_units, run.n_annotations) == (2, 6)
    u0 = UnitAggregate.objects.get(unit=hits[0].unit)
    assert (u0.crowd_word, u0.concept, u0.category, u0.category_mv, u0.n_annotations) == (
        "0", "0", "object", "object", 3)
    assert u0.method == aggregation.METHOD_KEY
    assert 0.5 < u0.category_probability <= 1.0 and 0.5 < u0.word_probability <= 1.0
    assert (u0.category_ds, u0.category_ds_probability) == (u0.category, u0.category_probability)  # deprecated copy
    assert u0.agreement == pytest.approx(2 / 3)
    assert u0.precision == pytest.approx((0.9 + 0.8 + 1.0) / 3)
    assert u0.interpretable and u0.word_match and u0.category_match
    u1 = UnitAggregate.objects.get(unit=hits[1].unit)
    assert (u1.crowd_word, u1.category, u1.category_mv, u1.interpretable) == ("", "none", "none", False)
    assert u1.precision == pytest.approx((0.2 + 0.3 + 1.0) / 3)
    assert not UnitAggregate.objects.filter(unit=hits[2].unit).exists()


def test_rerunning_an_aggregation_overwrites_instead_of_duplicating(layer_with_hits, workers):
    layer, hits = layer_with_hits
    answer(hits[0], workers[0], "dog", "object")
    aggregation_run_layer(layer=layer)
    aggregation_run_layer(layer=layer)
    assert UnitAggregate.objects.filter(unit__layer=layer).count() == 1
    assert AggregationRun.objects.filter(layer=layer).count() == 2


def test_a_unit_whose_only_answers_were_rejected_loses_its_stale_label(layer_with_hits, workers):
    layer, hits = layer_with_hits
    ann = answer(hits[0], workers[0], "dog", "object")
    aggregation_run_layer(layer=layer)
    Assignment.objects.filter(pk=ann.assignment_id).update(status=Assignment.Status.REJECTED)
    aggregation_run_layer(layer=layer)
    assert not UnitAggregate.objects.filter(unit=hits[0].unit).exists()


def _probabilities(layer):
    return {a.unit_id: min(a.category_probability, a.word_probability)
            for a in UnitAggregate.objects.filter(unit__layer=layer)}


def test_a_label_less_probable_than_the_threshold_after_all_assignments_gets_one_more_assignment(
        layer_with_hits, workers, settings):
    settings.RESULTS_REDUNDANCY_PROBABILITY = 0.8
    settings.RESULTS_REDUNDANCY_CAP = 4
    layer, hits = layer_with_hits
    for w, word in zip(workers[:3], ["dog", "cat", "cow"]):  # three different words after 3 of 3
        answer(hits[0], w, word, "object")
    for w in workers[:2]:  # as split, but only 2 of 3 assignments in: wait
        answer(hits[1], w, w.username, "object")
    for w in workers[:3]:  # full agreement: a probable label, nothing to do
        answer(hits[2], w, "sky", "scene")
    Hit.objects.filter(pk=hits[0].pk).update(status=Hit.Status.REVIEWABLE)

    run = aggregation_run_layer(layer=layer)

    probability = _probabilities(layer)
    assert probability[hits[0].unit_id] < 0.8 <= probability[hits[2].unit_id]
    refreshed = {h.pk: h for h in Hit.objects.filter(pk__in=[h.pk for h in hits])}
    assert refreshed[hits[0].pk].max_assignments == 4
    assert refreshed[hits[0].pk].status == Hit.Status.ASSIGNABLE
    assert refreshed[hits[1].pk].max_assignments == 3
    assert refreshed[hits[2].pk].max_assignments == 3
    assert run.summary["reopened_hits"] == [hits[0].pk]

    answer(hits[0], workers[3], "horse", "object")  # still improbable, but the cap (4) is reached
    aggregation_run_layer(layer=layer)
    assert Hit.objects.get(pk=hits[0].pk).max_assignments == 4


def test_a_batchs_own_threshold_and_cap_override_the_sites(layer_with_hits, workers, settings):
    settings.RESULTS_REDUNDANCY_PROBABILITY = 0.0  # the site asks for nothing more
    settings.RESULTS_REDUNDANCY_CAP = 3
    layer, hits = layer_with_hits
    for w in workers[:3]:  # full agreement on every unit of the batch
        answer(hits[0], w, "sky", "scene")
    for w, word in zip(workers[:3], ["dog", "cat", "cow"]):
        answer(hits[1], w, word, "object")
    batch = hits[0].batch
    probability = {}
    aggregation_run_layer(layer=layer)
    probability = _probabilities(layer)
    assert Hit.objects.get(pk=hits[1].pk).max_assignments == 3  # the site's 0.0 threshold reopens nothing

    # The batch asks for more answers below a threshold between the two units' probabilities, up to 5.
    batch.redundancy_probability = (probability[hits[0].unit_id] + probability[hits[1].unit_id]) / 2
    batch.redundancy_cap = 5
    batch.save(update_fields=["redundancy_probability", "redundancy_cap"])
    run = aggregation_run_layer(layer=layer)
    assert run.summary["reopened_hits"] == [hits[1].pk]
    assert Hit.objects.get(pk=hits[1].pk).max_assignments == 4
    assert Hit.objects.get(pk=hits[0].pk).max_assignments == 3


def test_annotator_skill_records_gold_accuracy_and_the_dawid_skene_estimate(workers):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=5)
    hits = make_hits(job)
    units = [h.unit for h in hits]
    for unit, digit in zip(units, ["3", "five|5", "7"]):
        unit.is_gold, unit.gold_word, unit.gold_category = True, digit, "object"
        unit.save(update_fields=["is_gold", "gold_word", "gold_category"])
    good, sloppy = workers[0], workers[1]
    for hit, digit in zip(hits, ["three", "5", "7"]):
        answer(hit, good, digit, "object")
    answer(hits[0], sloppy, "3", "object")
    answer(hits[1], sloppy, "8", "object")  # wrong word
    answer(hits[2], sloppy, "7", "texture")  # wrong category

    aggregation_run_layer(layer=job.layer_set.get())

    assert AnnotatorSkill.objects.get(worker=good).gold_accuracy == 1.0
    skill = AnnotatorSkill.objects.get(worker=sloppy)
    assert (skill.gold_answered, skill.gold_correct) == (3, 1)
    assert skill.gold_accuracy == pytest.approx(1 / 3)
    assert skill.skill is not None and skill.ds_skill == skill.skill  # ds_skill: the deprecated copy
    assert AnnotatorSkill.objects.get(worker=good).skill > skill.skill


def test_a_batch_run_records_alpha_over_the_batch(layer_with_hits, workers):
    layer, hits = layer_with_hits
    for hit, cat in zip(hits[:2], ["object", "scene"]):
        for w in workers[:2]:
            answer(hit, w, "x", cat)
    run = aggregation_run_batch(batch=hits[0].batch)
    assert run.batch_id == hits[0].batch_id
    assert run.alpha == pytest.approx(1.0)
    assert run.n_annotations == 4


def test_synonyms_are_stored_normalised_and_bad_ones_refused(layer_with_hits):
    layer, _ = layer_with_hits
    dataset = layer.job.dataset
    entry = synonym_set(dataset=dataset, word="  Puppies ", target="Dogs")
    assert (entry.word, entry.target) == ("puppy", "dog")
    synonym_set(dataset=dataset, word="puppy", target="cat")
    assert SynonymEntry.objects.get(dataset=dataset, word="puppy").target == "cat"
    with pytest.raises(ResultsError, match="letters or digits"):
        synonym_set(dataset=dataset, word="!!", target="dog")
    with pytest.raises(ResultsError, match="no synonym is needed"):
        synonym_set(dataset=dataset, word="Dogs", target="dog")


def test_layer_answers_are_the_counted_labelling_answers_with_hand_counted_marks(workers):
    """What the aggregation reads (plain rows since the soak): worked out by hand here.

    Unit 0 has 10 top images, unit 1 has 10 and a sentinel; the HITs show 6 (unit 0) and 15 (unit 1:
    all 10 tops). Marks on tops at or past what was shown do not count; sentinel marks never do;
    rejected answers, verify HITs' verdicts and another layer's answers are not read."""
    from tests.results.helpers import verify_answer
    from units.crowd.models import HitKind
    from units.dissection.models import Exemplar
    from units.results.aggregation import Answer
    from units.results.selectors import vocabulary_for
    from units.results.selectors import layer_answers

    job = make_job(layers={"conv3": 2, "conv2": 1}, exemplars_per_unit=10)
    hits = {(h.unit.layer.name, h.unit.index): h for h in make_hits(job, assignments=5)}
    layer = job.layer_set.get(name="conv3")
    Hit.objects.filter(pk=hits["conv3", 0].pk).update(exemplars_shown=6)
    u1 = hits["conv3", 1].unit
    sentinel = Exemplar.objects.create(unit=u1, rank=0, kind=Exemplar.Kind.SENTINEL, image_index=999, score=0.0,
                                       image_name="s.png", picture="s.png", plain="s.png")
    h0, h1 = Hit.objects.get(pk=hits["conv3", 0].pk), hits["conv3", 1]
    a = answer(h0, workers[0], "Zero", "object", non_fitting=(0, 5, 6, 9))  # 0 and 5 shown: 2 count
    b = answer(h0, workers[1], "zeros", "Object", status=Assignment.Status.APPROVED)
    answer(h0, workers[2], "one", "object", non_fitting=(1,), status=Assignment.Status.REJECTED)  # not counted
    c = answer(h1, workers[0], "one", "part", non_fitting=(9,))  # all 10 shown: counts
    c.non_fitting.add(sentinel)  # a sentinel mark: never counted
    answer(hits["conv2", 0], workers[3], "two", "object", non_fitting=(0,))  # another layer
    verify = Hit.objects.create(batch=h1.batch, unit=u1, kind=HitKind.VERIFY, label_source="iou", proposed_label="1",
                                max_assignments=3, expires_at=h1.expires_at)
    verify_answer(verify, workers[3], "yes")

    vocab = vocabulary_for(job.dataset)
    got = layer_answers(layer, vocab)
    assert got == [
        Answer(task=h0.unit_id, worker=workers[0].pk, word=vocab.canonical("Zero"), category="object", shown=6,
               non_fitting=2),
        Answer(task=h0.unit_id, worker=workers[1].pk, word=vocab.canonical("zeros"), category="object", shown=6,
               non_fitting=0),
        Answer(task=u1.pk, worker=workers[0].pk, word=vocab.canonical("one"), category="part", shown=10,
               non_fitting=1),
    ]
    assert [x.task for x in got] == [a.assignment.hit.unit_id, b.assignment.hit.unit_id, c.assignment.hit.unit_id]


def test_worker_skills_read_the_published_models_skill_per_layer_and_per_project(layer_with_hits, workers):
    layer, hits = layer_with_hits
    a, b, c, _ = workers
    for hit in hits[:3]:  # a and b agree everywhere, c never does
        answer(hit, a, "dog", "object")
        answer(hit, b, "dog", "object")
        answer(hit, c, "sky", "scene")
    aggregation_run_layer(layer=layer)
    project = layer.job.project

    per_layer = worker_skills(project=project, layer=layer)
    stored = {s.worker_id: s.skill for s in AnnotatorSkill.objects.all()}
    assert per_layer == pytest.approx(stored)
    assert set(per_layer) == {a.pk, b.pk, c.pk}
    assert per_layer[a.pk] == per_layer[b.pk] > per_layer[c.pk]
    assert worker_skills(project=project) == pytest.approx(stored)

    other = make_job(layers={"conv1": 1}, project=make_project("elsewhere")).layer_set.get()  # another project
    with pytest.raises(ValueError):
        worker_skills(project=project, layer=other)
    assert worker_skills(project=other.job.project) == {}


def test_the_method_names_fit_the_columns_that_store_them():
    # SQLite does not enforce a CharField's length; PostgreSQL refuses the whole run.
    assert len(aggregation.METHOD) <= AggregationRun._meta.get_field("method").max_length
    assert len(aggregation.METHOD_KEY) <= UnitAggregate._meta.get_field("method").max_length

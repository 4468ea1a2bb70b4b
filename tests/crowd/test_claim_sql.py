"""The claim's hot path runs two plain SQL queries: the shortlist and the gold
share. They must pick exactly what the ORM definitions pick, on SQLite here and on PostgreSQL in CI."""
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_hits, make_job, make_user
from units.crowd import services
from units.crowd.models import Assignment, Hit, QualificationAttempt, Skip
from units.dissection.models import Unit


@pytest.fixture
def crowded(db):
    """30 HITs in every state the shortlist must tell apart, and a worker with a history."""
    job = make_job(layers={"conv3": 30}, exemplars_per_unit=1)
    hits = make_hits(job, assignments=2)
    worker, other = make_user(qualified=True), make_user(qualified=True)
    now = timezone.now()
    Unit.objects.filter(pk__in=[h.unit_id for h in hits[0:4]]).update(is_gold=True)  # gold by unit
    Hit.objects.filter(pk__in=[h.pk for h in hits[4:6]]).update(is_gold=True)  # gold by HIT
    Hit.objects.filter(pk=hits[6].pk).update(status=Hit.Status.UNASSIGNABLE)
    Hit.objects.filter(pk=hits[7].pk).update(status=Hit.Status.DISPOSED)
    Hit.objects.filter(pk=hits[8].pk).update(expires_at=now - timedelta(seconds=1))
    for hit in (hits[9], hits[1]):  # taken by the worker before (one of them gold)
        Assignment.objects.create(hit=hit, worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5),
                                  status=Assignment.Status.SUBMITTED)
    Assignment.objects.create(hit=hits[10], worker=other, accepted_at=now, deadline=now + timedelta(minutes=5))
    Skip.objects.create(hit=hits[11], worker=worker)
    QualificationAttempt.objects.create(user=worker, project=job.project, unit_ids=[hits[12].unit_id, hits[2].unit_id],
                                        started_at=now)
    return worker, other, now


@pytest.mark.parametrize("window", [3, 5, 25])  # 4 open gold HITs: cut inside, just past, well past the group
@pytest.mark.parametrize("gold_first", [True, False])
def test_a_window_cut_inside_a_group_or_filled_from_the_other_is_cut_the_same_way(crowded, gold_first, window,
                                                                                 monkeypatch):
    worker, other, now = crowded
    monkeypatch.setattr(services, "CLAIM_WINDOW", window)
    monkeypatch.setattr(services, "CLAIM_CANDIDATES", window)
    for who, available in ((worker, 22), (other, 27)):
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(7))
        assert services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(7)) == orm
        assert len(orm) == min(window, available)


@pytest.mark.parametrize("gold_first", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_plain_sql_shortlist_picks_what_the_orm_shortlist_picks(crowded, gold_first, seed):
    worker, other, now = crowded
    # The worker may have 30 - 8 HITs (see `crowded`); the other annotator 30 - 3, cut at 25 candidates.
    for who, n in ((worker, 22), (other, services.CLAIM_CANDIDATES)):
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(seed))
        sql = services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(seed))
        assert sql == orm
        assert len(sql) == n


def test_the_shortlist_leaves_out_every_hit_the_worker_must_not_get(crowded):
    worker, _, now = crowded
    picked = set(services._likely_shortlist(worker, now=now, gold_first=False, rng=random.Random(0)))
    hits = list(Hit.objects.order_by("pk"))
    excluded = {hits[i].pk for i in (1, 2, 6, 7, 8, 9, 11, 12)}
    assert not picked & excluded
    assert picked == {h.pk for h in hits} - excluded  # the other 22, among them hits[10] (another's, a slot free)


def test_gold_first_puts_the_open_gold_hits_at_the_front(crowded):
    worker, _, now = crowded
    picked = services._likely_shortlist(worker, now=now, gold_first=True, rng=random.Random(5))
    gold = set(Hit.objects.filter(is_gold=True).values_list("pk", flat=True)) | set(
        Hit.objects.filter(unit__is_gold=True).values_list("pk", flat=True))
    open_gold = gold - set(Hit.objects.filter(assignments__worker=worker).values_list("pk", flat=True)) - {
        h.pk for h in Hit.objects.filter(unit_id__in=QualificationAttempt.objects.get(user=worker).unit_ids)}
    assert len(open_gold) == 4  # units 0 and 3 (hits 0, 3) and hits 4, 5
    assert set(picked[:4]) == open_gold and not set(picked[4:]) & gold


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.7])
def test_the_claim_state_counts_what_the_orm_counts(crowded, rate):
    from django.db.models import Count, Q

    from units.crowd.models import CrowdSettings

    worker, other, now = crowded
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": rate})
    for who in (worker, other):
        taken = Assignment.objects.filter(worker=who).aggregate(
            total=Count("pk"), gold=Count("pk", filter=Q(hit__is_gold=True) | Q(hit__unit__is_gold=True)))
        expected = rate > 0 and taken["gold"] < rate * (taken["total"] + 1)
        state = services._claim_state(who, now=now)
        assert state.gold_first is expected and state.gold_rate == rate
        assert state.qualification_units == sorted(services._qualification_units(who))
        assert state.gold_open  # gold units and gold HITs exist
    # the worker: 2 taken, 1 gold -> due at rate 0.5 (1 < 1.5) but not at 0.1 (1 < 0.3 is false)
    assert services._gold_due(0.5, taken=2, gold_taken=1) and not services._gold_due(0.1, taken=2, gold_taken=1)
    # Attempts of two projects: both lists of units come back, each id once.
    from tests.factories import make_project

    first = QualificationAttempt.objects.get(user=worker)
    QualificationAttempt.objects.create(user=worker, project=make_project(), unit_ids=[first.unit_ids[0], 10**12],
                                        started_at=now)
    assert services._claim_state(worker, now=now).qualification_units == sorted({*first.unit_ids, 10**12})


@pytest.mark.parametrize("gold_first", [True, False])
def test_without_any_gold_the_gold_group_is_not_read_and_the_shortlist_is_the_same(crowded, gold_first):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    worker, other, now = crowded
    Unit.objects.update(is_gold=False)
    Hit.objects.update(is_gold=False)
    for who in (worker, other):
        state = services._claim_state(who, now=now)
        assert not state.gold_open
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(2))
        with CaptureQueriesContext(connection) as reads:
            sql = services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(2), state=state)
        assert sql == orm and len(orm) > 0
        assert len(reads) == 1  # the group of HITs that are not gold only
    # A gold HIT again (an open one): the flag sees it, and the shortlist offers it first when gold is due.
    gold_hit = Hit.objects.filter(status=Hit.Status.ASSIGNABLE).exclude(assignments__worker=other).first()
    Hit.objects.filter(pk=gold_hit.pk).update(is_gold=True)
    state = services._claim_state(other, now=now)
    assert state.gold_open
    picked = services._likely_shortlist(other, now=now, gold_first=True, rng=random.Random(2), state=state)
    assert picked[0] == gold_hit.pk


@pytest.mark.parametrize("gold_first", [True, False])
def test_the_verify_hit_of_a_crowd_label_is_not_shortlisted_for_the_units_labellers(crowded, gold_first,
                                                                                       monkeypatch):
    """The rule of `_offerable`, kept by the plain SQL too: a unit's labellers never get the verify HIT
    of its crowd label (they would judge their own answer); its IoU label's verify HIT they may get."""
    from units.crowd.models import Annotation, HitKind, LabelSource

    monkeypatch.setattr(services, "CLAIM_WINDOW", 100)  # every open HIT in the shortlist
    monkeypatch.setattr(services, "CLAIM_CANDIDATES", 100)
    worker, other, now = crowded
    hits = list(Hit.objects.order_by("pk"))
    labelled = Assignment.objects.get(hit=hits[9], worker=worker)  # the worker labelled hits[9]'s unit
    Annotation.objects.create(assignment=labelled, word="zero", category="object")
    Assignment.objects.create(hit=hits[13], worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5),
                              status=Assignment.Status.SUBMITTED)  # taken, never answered: not a labeller
    verify = {}
    for base in (hits[9], hits[13]):
        for source in (LabelSource.CROWD, LabelSource.IOU):
            verify[base.pk, source] = Hit.objects.create(
                batch=base.batch, unit_id=base.unit_id, kind=HitKind.VERIFY, label_source=source,
                proposed_label="zero", max_assignments=2, assignment_duration_seconds=60, lifetime_seconds=3600,
                expires_at=now + timedelta(hours=1)).pk
    own = verify[hits[9].pk, LabelSource.CROWD]
    for who, not_offered in ((worker, {own}), (other, set())):
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(3))
        sql = services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(3))
        assert sql == orm
        assert set(sql) & set(verify.values()) == set(verify.values()) - not_offered
        assert {h.pk for h in services.open_hits_for(who, now=now)} & set(verify.values()) == set(
            verify.values()) - not_offered


@pytest.fixture
def pooled(crowded):
    """On top of `crowded`: a second job's 12 HITs published to a private pool (4 of them gold) whose only
    member is the worker; a third pool of the same project, empty, holds 3 more HITs."""
    from tests.factories import lab_project
    from units.crowd.models import HitBatch
    from units.projects.models import Pool

    worker, other, now = crowded
    pool = Pool.objects.create(project=lab_project(), name="lab members")
    pool.members.add(worker)
    hits = make_hits(make_job(layers={"conv3": 12}, exemplars_per_unit=1), assignments=2)
    HitBatch.objects.filter(pk=hits[0].batch_id).update(pool=pool)
    Hit.objects.filter(pk__in=[h.pk for h in hits[:4]]).update(is_gold=True)
    empty = Pool.objects.create(project=lab_project(), name="nobody yet")
    closed = make_hits(make_job(layers={"conv3": 3}, exemplars_per_unit=1))
    HitBatch.objects.filter(pk=closed[0].batch_id).update(pool=empty)
    return worker, other, now, {h.pk for h in hits}, {h.pk for h in closed}


@pytest.mark.parametrize("gold_first", [True, False])
@pytest.mark.parametrize("window", [5, 40])
def test_the_pool_filter_in_plain_sql_is_its_orm_definition(pooled, gold_first, window, monkeypatch):
    worker, other, now, pool_hits, closed_hits = pooled
    monkeypatch.setattr(services, "CLAIM_WINDOW", window)
    monkeypatch.setattr(services, "CLAIM_CANDIDATES", window)
    for who in (worker, other):
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(4))
        assert services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(4)) == orm
        assert not set(orm) & closed_hits
    exact_worker = {h.pk for h in services.open_hits_for(worker, now=now)}
    exact_other = {h.pk for h in services.open_hits_for(other, now=now)}
    assert pool_hits <= exact_worker and not pool_hits & exact_other  # trying to break it: the outsider
    assert not (exact_worker | exact_other) & closed_hits


def test_an_annotator_outside_the_pool_is_never_given_its_hits(pooled):
    worker, other, now, pool_hits, closed_hits = pooled
    taken = []
    for _ in range(100):  # each claim returned at once, so the next claim looks for another HIT
        assignment = services.assignment_claim(worker=other, now=now)
        if assignment is None:
            break
        taken.append(assignment.hit_id)
        services.assignment_return(assignment_id=assignment.pk, worker=other)
    assert len(taken) == len(set(taken)) > 0 and not set(taken) & (pool_hits | closed_hits)


@pytest.fixture
def two_projects(pooled):
    """On top of `pooled`: a second project with an open batch of 10 HITs (2 gold) and a pool batch of 4
    whose only member is the worker. The worker is qualified for the lab only; `other` for both; a third
    annotator, `newcomer`, for the second project only (and in its pool)."""
    from tests.factories import make_project
    from units.crowd.models import HitBatch
    from units.crowd.qualification import mark_qualified
    from units.projects.models import Pool

    worker, other, now, pool_hits, closed_hits = pooled
    beta = make_project("beta")
    open_b = make_hits(make_job(layers={"conv3": 10}, exemplars_per_unit=1, project=beta), assignments=2)
    Hit.objects.filter(pk__in=[h.pk for h in open_b[:2]]).update(is_gold=True)
    pool = Pool.objects.create(project=beta, name="beta members")
    pooled_b = make_hits(make_job(layers={"conv3": 4}, exemplars_per_unit=1, project=beta), assignments=2)
    HitBatch.objects.filter(pk=pooled_b[0].batch_id).update(pool=pool)
    newcomer = make_user(qualified=beta)
    pool.members.add(worker, newcomer)
    mark_qualified(other, beta)
    return worker, other, newcomer, now, {h.pk for h in open_b}, {h.pk for h in pooled_b}


@pytest.mark.parametrize("gold_first", [True, False])
@pytest.mark.parametrize("window", [5, 60])
def test_the_qualification_filter_in_plain_sql_is_its_orm_definition(two_projects, gold_first, window, monkeypatch):
    worker, other, newcomer, now, open_b, pooled_b = two_projects
    monkeypatch.setattr(services, "CLAIM_WINDOW", window)
    monkeypatch.setattr(services, "CLAIM_CANDIDATES", window)
    for who in (worker, other, newcomer):
        orm = services._shortlist(services._likely_open_hits_for(who, now=now), gold_first=gold_first,
                                  rng=random.Random(6))
        assert services._likely_shortlist(who, now=now, gold_first=gold_first, rng=random.Random(6)) == orm
    exact = {who: {h.pk for h in services.open_hits_for(who, now=now)} for who in (worker, other, newcomer)}
    # Trying to break it: the worker is in beta's pool but qualified for the lab only; `other` is qualified
    # for beta but outside its pool; the newcomer is qualified for beta only.
    assert not exact[worker] & (open_b | pooled_b)
    assert open_b <= exact[other] and not exact[other] & pooled_b
    assert exact[newcomer] == open_b | pooled_b


def test_an_annotator_qualified_in_one_project_never_takes_a_hit_of_another(two_projects):
    worker, other, newcomer, now, open_b, pooled_b = two_projects
    taken = []
    for _ in range(200):  # each claim returned at once, so the next claim looks for another HIT
        assignment = services.assignment_claim(worker=worker, now=now)
        if assignment is None:
            break
        taken.append(assignment.hit_id)
        services.assignment_return(assignment_id=assignment.pk, worker=worker)
    assert len(taken) == len(set(taken)) > 0 and not set(taken) & (open_b | pooled_b)
    # Choosing beta's batch by its id does not get round it either.
    batch_id = Hit.objects.get(pk=min(open_b)).batch_id
    assert services.assignment_claim(worker=worker, now=now, batch_id=batch_id) is None
    # Without any qualification, no HIT at all, with the reason.
    from units.crowd.errors import NotAllowed
    from units.crowd.models import Qualification

    Qualification.objects.filter(user=worker).delete()
    with pytest.raises(NotAllowed, match="qualification"):
        services.assignment_claim(worker=worker, now=now)


def test_an_annotator_unqualified_since_cannot_take_an_expired_hit_again(two_projects):
    from units.crowd.annotators import annotator_unqualify
    from units.crowd.errors import NotAllowed

    worker, other, newcomer, now, open_b, pooled_b = two_projects
    assignment = services.assignment_claim(worker=newcomer, now=now)
    Assignment.objects.filter(pk=assignment.pk).update(deadline=now - timedelta(seconds=1))
    annotator_unqualify(user=newcomer, project=assignment.hit.batch.project)
    with pytest.raises(NotAllowed, match="qualification"):
        services.assignment_retake(assignment_id=assignment.pk, worker=newcomer, now=now)

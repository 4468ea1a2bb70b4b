"""The claim's and submit's reads in plain SQL (annotate_site.plainsql) give exactly what
their ORM definitions give: the same rows, every field equal (datetimes, decimals, JSON, nulls), and the
related objects loaded so that reading them costs no query. Runs on SQLite here, on PostgreSQL in CI."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate_site import plainsql
from tests.factories import make_hits, make_job, make_user
from units.crowd import selectors, services
from units.crowd.models import Assignment, CrowdSettings, Hit, HitBatch, QualificationAttempt
from units.dissection.models import Exemplar, Unit


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.fixture
def hits(db):
    job = make_job(layers={"conv3": 6}, exemplars_per_unit=4)
    hits = make_hits(job, assignments=2)
    for unit in Unit.objects.all()[:2]:
        for r in range(3):
            Exemplar.objects.create(unit=unit, kind=Exemplar.Kind.SENTINEL, rank=r, image_index=900 + r,
                                    image_name=f"s{r}.png", score=0.01 * r, picture="p.png", plain="p.png")
    Hit.objects.filter(pk=hits[0].pk).update(reward=Decimal("0.07"), proposed_label="dog")
    return hits


def test_a_loaded_row_equals_the_orm_instance_field_by_field(hits):
    now = timezone.now()
    worker = make_user(qualified=True)
    done = Assignment.objects.create(hit=hits[0], worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5),
                                     status=Assignment.Status.SUBMITTED, submitted_at=now, work_seconds=12.5)
    attempt = QualificationAttempt.objects.create(user=worker, project_id=hits[0].batch.project_id,
                                                  unit_ids=[hits[1].unit_id, 7], started_at=now)
    for model, pk in ((Hit, hits[0].pk), (Assignment, done.pk), (QualificationAttempt, attempt.pk),
                      (Unit, hits[0].unit_id), (HitBatch, hits[0].batch_id)):
        table = plainsql.Table(model, "t")
        row = plainsql.fetch_one(f"SELECT {table.columns} FROM {table.name} WHERE t.id = %s", [pk])
        loaded, end = table.load(row)
        orm = model.objects.get(pk=pk)
        assert end == len(row) == len(model._meta.concrete_fields)
        assert type(loaded) is model and not loaded._state.adding and loaded._state.db == "default"
        assert _fields(loaded) == _fields(orm)
        assert {type(v) for v in _fields(loaded).values()} == {type(v) for v in _fields(orm).values()}
    qa = plainsql.Table(QualificationAttempt, "q")
    (raw,) = plainsql.fetch_one(f"SELECT {qa.col('unit_ids')} FROM {qa.name} WHERE q.id = %s", [attempt.pk])
    assert qa.value("unit_ids", raw) == [hits[1].unit_id, 7]


def test_a_left_join_that_found_nothing_loads_none(hits):
    table = plainsql.Table(Assignment, "a")
    row = plainsql.fetch_one(f"SELECT h.id, {table.columns} FROM {plainsql.Table(Hit, 'h').name}"
                             f" LEFT JOIN {table.name} ON a.hit_id = h.id WHERE h.id = %s", [hits[0].pk])
    assert table.load(row, 1) == (None, 1 + len(table.fields))


@pytest.mark.parametrize("case", ["open", "expired", "disposed", "missing"])
def test_the_claims_locked_hit_read_is_its_orm_definition(hits, case):
    now = timezone.now()
    hit = hits[1]
    if case == "expired":
        Hit.objects.filter(pk=hit.pk).update(expires_at=now - timedelta(seconds=1))
    elif case == "disposed":
        Hit.objects.filter(pk=hit.pk).update(status=Hit.Status.DISPOSED)
    hit_id = hit.pk if case != "missing" else 10**6
    with transaction.atomic():
        orm = (Hit.objects.select_for_update(skip_locked=True, of=("self",)).select_related(*services.HIT_SHOWN)
               .filter(pk=hit_id, expires_at__gt=now).exclude(status=Hit.Status.DISPOSED).first())
        plain = services._hit_locked_for_claim(hit_id, now=now)
    if case != "open":
        assert orm is None and plain is None
        return
    assert _fields(plain) == _fields(orm)
    with CaptureQueriesContext(connection) as reads:
        assert _fields(plain.unit) == _fields(orm.unit)
        assert _fields(plain.unit.layer) == _fields(orm.unit.layer)
        assert _fields(plain.batch) == _fields(orm.batch)
    assert len(reads) == 0  # loaded with the HIT, as select_related loads them


def test_the_submits_locked_assignment_read_is_its_orm_definition(hits):
    now = timezone.now()
    worker, other = make_user(qualified=True), make_user(qualified=True)
    mine = Assignment.objects.create(hit=hits[2], worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5))
    with transaction.atomic():
        orm = (Assignment.objects.select_for_update(of=("self", "hit")).select_related("hit", "hit__unit", "hit__batch")
               .get(pk=mine.pk))
        plain = services._own_assignment_for_update(assignment_id=mine.pk, worker=worker)
        with CaptureQueriesContext(connection) as reads:
            assert _fields(plain) == _fields(orm)
            for name in ("hit", "unit", "batch"):
                a, b = (plain.hit, orm.hit) if name == "hit" else (getattr(plain.hit, name), getattr(orm.hit, name))
                assert _fields(a) == _fields(b)
        assert len(reads) == 0
        # Trying to break it: another annotator's assignment, and one that does not exist.
        with pytest.raises(services.NotFound):
            services._own_assignment_for_update(assignment_id=mine.pk, worker=other)
        with pytest.raises(services.NotFound):
            services._own_assignment_for_update(assignment_id=mine.pk + 1000, worker=worker)


@pytest.mark.parametrize("top,sentinels", [(2, 2), (15, 2), (2, 0), (0, 2), (0, 0), (15, 15)])
def test_a_hits_pictures_are_read_as_the_orm_reads_them(hits, top, sentinels):
    for hit in hits[:3]:  # units 0 and 1 have sentinels, unit 2 has none
        orm = [list(Exemplar.objects.filter(unit_id=hit.unit_id, kind=kind).order_by("rank")[:limit])
               for kind, limit in ((Exemplar.Kind.TOP, top), (Exemplar.Kind.SENTINEL, sentinels))]
        plain = selectors._exemplars(hit.unit_id, top, sentinels)
        assert [[_fields(e) for e in group] for group in plain] == [[_fields(e) for e in group] for group in orm]


def test_the_claim_state_reads_the_live_assignment_and_gold_rate(hits):
    now = timezone.now()
    worker = make_user(qualified=True)
    CrowdSettings.objects.all().delete()

    def read():
        state = services._claim_state(worker, now=now)
        return state.current, state.gold_rate

    assert read() == (None, CrowdSettings().gold_rate)
    assert CrowdSettings.objects.filter(pk=1).exists()  # made on first use, as CrowdSettings.load makes it
    CrowdSettings.objects.filter(pk=1).update(gold_rate=0.25)
    Assignment.objects.create(hit=hits[0], worker=worker, accepted_at=now - timedelta(hours=1),
                              deadline=now - timedelta(seconds=1))  # past its deadline: not live
    assert read() == (None, 0.25)
    live = [Assignment.objects.create(hit=h, worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5))
            for h in hits[1:3]]
    orm = (Assignment.objects.filter(worker=worker, status=Assignment.Status.ACCEPTED, deadline__gt=now)
           .values_list("pk", flat=True).first())
    assert read() == (orm, 0.25) == (live[0].pk, 0.25)


@pytest.mark.parametrize("statuses,expected", [
    ((), Hit.Status.ASSIGNABLE),
    (("accepted",), Hit.Status.ASSIGNABLE),
    (("accepted", "submitted"), Hit.Status.UNASSIGNABLE),
    (("submitted", "approved"), Hit.Status.REVIEWABLE),
    (("submitted", "returned", "abandoned"), Hit.Status.ASSIGNABLE),
])
def test_the_hit_status_kept_by_plain_sql_follows_the_slot_rule(hits, statuses, expected):
    now = timezone.now()
    hit = hits[3]  # 2 slots
    for status in statuses:
        Assignment.objects.create(hit=hit, worker=make_user(qualified=True), accepted_at=now,
                                  deadline=now + timedelta(minutes=5), status=status)
    Hit.objects.filter(pk=hit.pk).update(status=Hit.Status.UNASSIGNABLE if expected == Hit.Status.ASSIGNABLE
                                         else Hit.Status.ASSIGNABLE)
    hit.refresh_from_db()
    services.hit_sync_status(hit, now=now)
    assert hit.status == expected
    assert Hit.objects.get(pk=hit.pk).status == expected  # written, not just set on the instance


def test_the_lock_clause_is_the_backends(db):
    clause = plainsql.for_update(of=("h",), skip_locked=True)
    if connection.vendor == "postgresql":
        assert clause == " FOR UPDATE OF h SKIP LOCKED"
    else:
        assert clause == ""  # SQLite serialises writers; there is no row lock to ask for

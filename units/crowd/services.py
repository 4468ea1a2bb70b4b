"""The HIT queue and the labelling answers: claim, return, skip, reclaim, submit (see SCHEDULER.md)."""
from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotate_site.plainsql import (
    Table,
    cache_related,
    columns,
    count_where,
    fetch_all,
    fetch_one,
    for_update,
    load_row,
    placeholders,
)
from units.dissection.models import Layer, Unit
from units.projects.models import Pool

from .annotators import annotator_flag, profile_get
from .errors import Conflict, InvalidAnswer, NotAllowed, NotFound
from .quality import quality_rule_apply
from .quality_rule import QualityRule
from .models import (
    Annotation,
    AnnotatorProfile,
    Assignment,
    Channel,
    ChannelSettings,
    CrowdSettings,
    Hit,
    HitBatch,
    HitKind,
    LabelSource,
    Qualification,
    QualificationAttempt,
    Skip,
)
from .selectors import hit_exemplars
from .slots import SLOT, assignments_free, assignments_reclaim_expired, hit_set_status, hit_sync_status  # noqa: F401 (re-exported)
from .validation import clean_word, matches_gold, validate_answer

# How many candidate HITs one claim tries to lock before giving up; the rest are locked by others.
CLAIM_CANDIDATES = 25
# Rounds over the candidates when some were locked by concurrent claims (see SCHEDULER.md).
CLAIM_ROUNDS = 3
# Open HITs (in id order) a claim picks its candidates from at random: wide enough that a crowd
# rarely collides on one HIT, narrow enough that HITs still complete roughly in publishing order.
CLAIM_WINDOW = 200
# Seconds between two global sweeps for expired assignments made by claims of one process.
RECLAIM_EVERY = 30.0
_last_reclaim: datetime | None = None

# The hot path's tables under their SQL aliases (annotate_site.plainsql).
_ASSIGNMENT, _HIT, _UNIT, _LAYER, _BATCH = (Table(Assignment, "a"), Table(Hit, "h"), Table(Unit, "u"),
                                           Table(Layer, "lay"), Table(HitBatch, "b"))
_POOL_MEMBERS = Pool.members.through._meta.db_table
_PROFILE, _QA, _SETTINGS = Table(AnnotatorProfile, "p"), Table(QualificationAttempt, "q"), Table(CrowdSettings, "c")
_QUALIFIED = Table(Qualification, "qf")


def _slots_held(now: datetime) -> Coalesce:
    """Slots held per HIT, not counting accepted work past its deadline (it is freed on the next look)."""
    held = (Assignment.objects.filter(hit=OuterRef("pk"), status__in=SLOT)
            .exclude(status=Assignment.Status.ACCEPTED, deadline__lte=now)
            .values("hit").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(held, output_field=IntegerField()), Value(0))


def _offerable(worker: User, queryset: QuerySet[Hit], *, now: datetime) -> QuerySet[Hit]:
    return (
        queryset.exclude(status=Hit.Status.DISPOSED)
        .filter(expires_at__gt=now)
        .filter(~Exists(Assignment.objects.filter(hit=OuterRef("pk"), worker=worker)))
        .filter(~Exists(Skip.objects.filter(hit=OuterRef("pk"), worker=worker)))
        # Only HITs of projects the worker is qualified for.
        .filter(batch__project_id__in=Qualification.objects.filter(user_id=worker.pk).values("project_id"))
        # Only this site's batches: an outside crowd's HITs are taken through its marketplace.
        .filter(batch__channel=Channel.SITE)
        # An open batch (no pool) goes to the whole crowd; a pool's batch to its members only.
        .filter(Q(batch__pool__isnull=True) | Exists(Pool.members.through.objects.filter(
            pool_id=OuterRef("batch__pool_id"), user_id=worker.pk)))
        # A unit seen in the qualification test would be a gold HIT with a known answer.
        .exclude(unit_id__in=_qualification_units(worker))
        # Its own labellers would be judging their own answer in a verify HIT of the unit's crowd label.
        .exclude(Q(kind=HitKind.VERIFY, label_source=LabelSource.CROWD)
                 & Exists(label_answers_by(worker).filter(assignment__hit__unit=OuterRef("unit"))))
    )


def label_answers_by(worker: User) -> QuerySet[Annotation]:
    """The worker's answers to labelling HITs (narrow it to a unit): who helped make a unit's crowd label."""
    return Annotation.objects.filter(assignment__worker=worker, assignment__hit__kind=HitKind.LABEL)


# Kept statuses under which a HIT may have a free slot. A REVIEWABLE HIT has every slot held by answers
# and no work in progress: only a rejection, a returned or freed assignment or more assignments can free
# one, and each of those paths sets the status again under the HIT lock (slots.hit_sync_status; the admin
# too). So the exact count is taken over these only: a drained queue must not count the slots of every
# finished HIT on each claim while annotators poll for work.
MAY_HAVE_FREE_SLOT = (Hit.Status.ASSIGNABLE, Hit.Status.UNASSIGNABLE, Hit.Status.REVIEWING)


def open_hits_for(worker: User, *, now: datetime) -> QuerySet[Hit]:
    """HITs this worker may be offered: alive, with a free slot, never taken or skipped by them (exact: the
    slots are counted, expired work not counted, over every HIT whose kept status allows a free slot)."""
    hits = Hit.objects.filter(status__in=MAY_HAVE_FREE_SLOT).annotate(held=_slots_held(now))
    return _offerable(worker, hits, now=now).filter(held__lt=F("max_assignments"))


def _likely_open_hits_for(worker: User, *, now: datetime) -> QuerySet[Hit]:
    """The fast shortlist: HITs whose kept status says a slot is free (an index scan, no per-HIT count).

    The status is kept by `hit_sync_status` under the HIT lock, so it is right except for slots
    held by work past its deadline; `open_hits_for` (exact) is asked when this finds nothing.
    """
    return _offerable(worker, Hit.objects.filter(status=Hit.Status.ASSIGNABLE), now=now)


def _qualification_units(worker: User) -> set[int]:
    seen: set[int] = set()
    for (unit_ids,) in fetch_all(f"SELECT {_QA.col('unit_ids')} FROM {_QA.name} WHERE {_QA.col('user_id')} = %s",
                                 [worker.pk]):
        seen.update(_QA.value("unit_ids", unit_ids) or ())
    return seen


def _gold_due(rate: float, *, taken: int, gold_taken: int) -> bool:
    """Keep each worker's share of gold assignments near `rate` (deterministic, no dice)."""
    return rate > 0 and gold_taken < rate * (taken + 1)


@dataclass(frozen=True)
class ClaimState:
    """What a claim needs to know about the worker before it looks for a HIT, read in one query."""

    current: int | None  # the worker's live assignment (the first, by id), if any
    gold_rate: float  # the crowd's share of gold assignments
    gold_first: bool  # this claim should offer gold first (the worker's gold share is below the rate)
    qualification_units: list[int]  # units of the worker's qualification tests: never offered as HITs
    gold_open: bool  # some gold HIT may be open (else the gold group is not read at all)


def _claim_state(worker: User, *, now: datetime) -> ClaimState:
    """`ClaimState` in one plain query (the claim's hot path), read after the profile lock.

    Same values as the ORM: the live assignment `Assignment.objects.filter(worker=, status=ACCEPTED,
    deadline__gt=now).order_by("pk")[:1]`; the gold rate of `CrowdSettings.load()`; the worker's assignments
    and those of them gold (by HIT or by unit), counted for the gold share; the unit ids of the worker's
    qualification attempts (`_qualification_units`), whose JSON lists come back concatenated as text.
    Gold is looked up per assignment (two index probes each): a join lets PostgreSQL hash the whole HIT
    table, whose size grows with the queue while a worker's assignments do not."""
    a, c, q = _ASSIGNMENT, _SETTINGS, _QA
    is_gold = (f"EXISTS (SELECT 1 FROM {_HIT.name} JOIN {_UNIT.name} ON u.id = h.unit_id"
               f" WHERE h.id = a.hit_id AND (h.is_gold OR u.is_gold))")
    concat = ("string_agg({}::text, ' ')" if connection.vendor == "postgresql" else "group_concat({}, ' ')").format(
        q.col("unit_ids"))
    gold_open = (f"EXISTS (SELECT 1 FROM {_UNIT.name} WHERE u.is_gold)"  # the partial indexes of gold units and HITs
                 f" OR EXISTS (SELECT 1 FROM {_HIT.name} WHERE h.is_gold AND h.status = %s)")
    current, gold_rate, taken, gold_taken, units_text, any_gold = fetch_one(
        f"SELECT (SELECT a.id FROM {a.name} WHERE a.worker_id = %s AND a.status = %s AND a.deadline > %s"
        f" ORDER BY a.id LIMIT 1), (SELECT {c.col('gold_rate')} FROM {c.name} WHERE c.id = 1),"
        f" (SELECT COUNT(*) FROM {a.name} WHERE a.worker_id = %s),"
        f" (SELECT {count_where(is_gold)} FROM {a.name} WHERE a.worker_id = %s),"
        f" (SELECT {concat} FROM {q.name} WHERE {q.col('user_id')} = %s), {gold_open}",
        [worker.pk, Assignment.Status.ACCEPTED, now, worker.pk, worker.pk, worker.pk, Hit.Status.ASSIGNABLE])
    if gold_rate is None:  # no settings row yet: made with its defaults
        gold_rate = CrowdSettings.load().gold_rate
    units = sorted({int(n) for n in re.findall(r"-?\d+", units_text or "")})
    return ClaimState(current=current, gold_rate=gold_rate, qualification_units=units, gold_open=bool(any_gold),
                      gold_first=_gold_due(gold_rate, taken=taken, gold_taken=int(gold_taken)))


def _likely_shortlist(worker: User, *, now: datetime, gold_first: bool, rng: random.Random,
                      state: ClaimState | None = None) -> list[int]:
    """`_shortlist(_likely_open_hits_for(...))` in plain SQL (the claim's hot path).

    The same rows and order as the ORM version (a test compares both on every case): HITs whose kept
    status is assignable, alive, never taken or skipped by the worker, not a unit of their
    qualification test; the wanted gold group first, then by id, the first CLAIM_WINDOW of them.
    Read group by group in id order, so each query is a range scan of the (status, id) index that
    stops at the window (ordering by the gold flag instead makes PostgreSQL join and sort every open
    HIT); the other group is read only to fill the window.
    """
    state = state or _claim_state(worker, now=now)
    skipped = state.qualification_units
    rows: list[tuple[int, bool]] = []
    for gold in (gold_first, not gold_first):
        if len(rows) < CLAIM_WINDOW and (state.gold_open or not gold):  # no gold anywhere: none to read
            rows += [(pk, gold) for pk in _open_ids(worker, now=now, gold=gold, skipped=skipped,
                                                    limit=CLAIM_WINDOW - len(rows))]
    return _pick(rows, gold_first=gold_first, rng=rng)


def _qualified_projects(worker: User) -> list[int]:
    """The projects the worker is qualified for (a few ids, read by the (user, project) index)."""
    q = _QUALIFIED
    return sorted(pk for (pk,) in fetch_all(f"SELECT {q.col('project_id')} FROM {q.name} WHERE {q.col('user_id')} = %s",
                                            [worker.pk]))


def _open_ids(worker: User, *, now: datetime, gold: bool, skipped: list[int], limit: int) -> list[int]:
    """Ids of open HITs of one gold group the worker may take, in id order, at most `limit`.

    Gold HITs are few: they are read from the partial indexes of gold HITs and gold units (a UNION of
    the two), so the read is as long as the gold list, not the queue, rather than a scan of every open
    HIT for the flag. The other group is a range scan of the (status, id) index with the gold
    units' ids hashed once."""
    params: list = [Hit.Status.ASSIGNABLE, now, worker.pk, worker.pk]
    not_seen = ""
    if skipped:
        not_seen = f" AND h.unit_id NOT IN ({placeholders(skipped)})"
        params.extend(skipped)
    # A verify HIT of a unit's crowd label is not offered to that unit's labellers (as in `_offerable`).
    own_label = (
        f" AND NOT (h.kind = %s AND h.label_source = %s AND EXISTS (SELECT 1 FROM {Annotation._meta.db_table} an"
        f" JOIN {Assignment._meta.db_table} la ON la.id = an.assignment_id JOIN {Hit._meta.db_table} lh"
        f" ON lh.id = la.hit_id WHERE la.worker_id = %s AND lh.kind = %s AND lh.unit_id = h.unit_id))")
    params.extend([HitKind.VERIFY, LabelSource.CROWD, worker.pk, HitKind.LABEL])
    # A batch of a project the worker is qualified for, on this site's channel (an outside crowd's HITs are
    # taken through its marketplace); an open batch (no pool) goes to the whole crowd, a pool's batch to its
    # members only (as in `_offerable`): one primary-key probe of the batch per HIT read, and one of the
    # pool's members. The worker's few qualified projects are a subquery of this read, not a read of their own.
    q = _QUALIFIED
    in_pool = (
        f" AND EXISTS (SELECT 1 FROM {HitBatch._meta.db_table} pb WHERE pb.id = h.batch_id AND pb.channel = %s"
        f" AND pb.project_id IN (SELECT {q.col('project_id')} FROM {q.name} WHERE {q.col('user_id')} = %s)"
        f" AND (pb.pool_id IS NULL"
        f" OR EXISTS (SELECT 1 FROM {_POOL_MEMBERS} pm WHERE pm.pool_id = pb.pool_id AND pm.user_id = %s)))")
    params.extend([Channel.SITE, worker.pk, worker.pk])
    may_take = (
        f"h.status = %s AND h.expires_at > %s"
        f" AND NOT EXISTS (SELECT 1 FROM {Assignment._meta.db_table} a WHERE a.hit_id = h.id AND a.worker_id = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {Skip._meta.db_table} s WHERE s.hit_id = h.id AND s.worker_id = %s)"
        f"{not_seen}{own_label}{in_pool}")
    gold_units = f"SELECT id FROM {Unit._meta.db_table} WHERE is_gold"
    if gold:
        sql = (f"SELECT h.id FROM {Hit._meta.db_table} h WHERE h.is_gold AND {may_take} UNION "
               f"SELECT h.id FROM {Hit._meta.db_table} h WHERE h.unit_id IN ({gold_units}) AND {may_take} "
               f"ORDER BY 1 LIMIT {int(limit)}")
        params = params + params
    else:
        sql = (f"SELECT h.id FROM {Hit._meta.db_table} h WHERE NOT h.is_gold AND h.unit_id NOT IN ({gold_units}) "
               f"AND {may_take} ORDER BY h.id LIMIT {int(limit)}")
    return [pk for (pk,) in fetch_all(sql, params)]


def _reclaim_due(now: datetime) -> bool:
    """At most one global sweep for expired work per process every RECLAIM_EVERY seconds: the
    periodic task does it too, and `_claim_hit` frees the expired slots of the HIT it locks."""
    global _last_reclaim
    if _last_reclaim is not None and abs((now - _last_reclaim).total_seconds()) < RECLAIM_EVERY:
        return False
    _last_reclaim = now
    return True


def _shortlist(queryset: QuerySet[Hit], *, gold_first: bool, rng: random.Random) -> list[int]:
    """CLAIM_CANDIDATES ids picked at random among the first CLAIM_WINDOW open HITs (by id), gold
    ones first or last as the worker's gold share asks. Random, so a crowd claiming at the same
    moment spreads over many HITs instead of queueing for the same first ones; from the first
    window, so HITs still fill roughly in publishing order. One query for both groups."""
    gold = ExpressionWrapper(Q(is_gold=True) | Q(unit__is_gold=True), output_field=BooleanField())
    preferred = F("gold").desc() if gold_first else F("gold").asc()  # the wanted group fills the window first
    rows = list(queryset.annotate(gold=gold).order_by(preferred, "pk").values_list("pk", "gold")[:CLAIM_WINDOW])
    return _pick(rows, gold_first=gold_first, rng=rng)


def _pick(rows: list[tuple[int, bool]], *, gold_first: bool, rng: random.Random) -> list[int]:
    groups = {True: [pk for pk, g in rows if g], False: [pk for pk, g in rows if not g]}
    for ids in groups.values():
        rng.shuffle(ids)
    return (groups[gold_first] + groups[not gold_first])[:CLAIM_CANDIDATES]


def _locked_claimable_profile(worker: User) -> AnnotatorProfile:
    """The worker's profile row, locked (it serialises one worker's claims: double clicks, two tabs),
    and checked in the same query: blocked or unqualified workers get no HIT."""
    row = fetch_one(f"SELECT {_PROFILE.columns} FROM {_PROFILE.name} WHERE {_PROFILE.col('user_id')} = %s"
                    f"{for_update()}", [worker.pk])
    profile = _PROFILE.load(row)[0] if row else None
    if profile is None:  # first claim of an account made without a profile: create it, then lock it
        profile = AnnotatorProfile.objects.select_for_update().get(pk=profile_get(worker).pk)
    if profile.is_blocked:
        raise NotAllowed("Your account is blocked from new HITs. Contact the requesters if you think this is wrong.")
    return profile


NOT_QUALIFIED = "Pass a project's qualification test first: only its qualified annotators get its HITs."


# What the claim's answer shows (unit, layer, batch): loaded with the HIT, so the view needs no second read.
HIT_SHOWN = ("unit__layer", "batch")


def assignment_claim(*, worker: User, now: datetime | None = None, batch_id: int | None = None,
                     kind: str | None = None) -> Assignment | None:
    """The worker's next assignment (their unfinished one first), or None when there is no work.
    With `batch_id`, only a HIT of that batch, with `kind` (label or verify) only a HIT of that kind (the
    annotator chose it); None if there is none left.

    The assignment comes with its HIT, unit, layer and batch loaded (HIT_SHOWN)."""
    now = now or timezone.now()
    if _reclaim_due(now):
        assignments_reclaim_expired(now=now)
    rng = random.Random()
    with transaction.atomic():
        _locked_claimable_profile(worker)
        state = _claim_state(worker, now=now)
        if state.current is not None:  # usually there is none
            return Assignment.objects.select_related(*(f"hit__{name}" for name in HIT_SHOWN)).get(pk=state.current)
        gold_first = state.gold_first

        def exact() -> list[int]:
            return _shortlist(open_hits_for(worker, now=now), gold_first=gold_first, rng=rng)

        def likely() -> list[int]:
            return _likely_shortlist(worker, now=now, gold_first=gold_first, rng=rng, state=state)

        def chosen() -> list[int]:
            hits = open_hits_for(worker, now=now)
            hits = hits if batch_id is None else hits.filter(batch_id=batch_id)
            return _shortlist(hits if kind is None else hits.filter(kind=kind), gold_first=gold_first, rng=rng)

        # The shortlist by kept status first; the exact per-HIT count only when it finds nothing,
        # so "no work" is never answered while a slot is free. A chosen batch or kind is counted exactly.
        for shortlist in ((chosen,) if batch_id is not None or kind is not None else (likely, exact)):
            for attempt in range(CLAIM_ROUNDS):
                busy = False
                for hit_id in shortlist():
                    assignment, locked = _claim_hit(hit_id=hit_id, worker=worker, now=now)
                    if assignment is not None:
                        return assignment
                    busy = busy or locked
                if not busy:
                    break
                # Every free HIT was being claimed by someone else: their slots may still be free once
                # those claims commit, so look again rather than tell the worker there is no work.
                time.sleep(0.02 * (attempt + 1))
    # No HIT: say why when it is that the worker is qualified for no project (read only on this path, so a
    # claim that finds work pays nothing for it; the reads above offer only qualified projects' HITs).
    if not _qualified_projects(worker):
        raise NotAllowed(NOT_QUALIFIED)
    return None


def _claim_hit(*, hit_id: int, worker: User, now: datetime) -> tuple[Assignment | None, bool]:
    """Take one slot of one HIT: (assignment, False), or (None, locked) where `locked` says another
    claim held the HIT's lock (it may still have a free slot) rather than the HIT being full or gone.

    The HIT row lock is the mutex of its slots: the count and the insert happen while we hold it,
    so two claims can never both see the last free slot. skip_locked lets a busy HIT be passed
    over instead of queuing every annotator behind it (PostgreSQL; SQLite serialises writers).
    """
    # Called inside the claim's transaction: no savepoint of its own (nothing here needs rolling back
    # alone except the insert, which has its own).
    with transaction.atomic(savepoint=False):
        # Locks the HIT row only (`of`), and brings what the answer shows along (HIT_SHOWN).
        hit = _hit_locked_for_claim(hit_id, now=now)
        if hit is None:
            alive = fetch_one(f"SELECT 1 FROM {_HIT.name} WHERE h.id = %s AND h.expires_at > %s AND h.status <> %s",
                              [hit_id, now, Hit.Status.DISPOSED])
            return None, alive is not None
        # One query for everything the decision needs, counted while we hold the lock: exact.
        held, expired, mine = fetch_one(
            f"SELECT {count_where(f'a.status IN ({placeholders(SLOT)})')}, "
            f"{count_where('a.status = %s AND a.deadline <= %s')},"
            f" {count_where('a.worker_id = %s')} FROM {_ASSIGNMENT.name} WHERE a.hit_id = %s",
            [*SLOT, Assignment.Status.ACCEPTED, now, worker.pk, hit.pk])
        if expired:
            # Work past its deadline frees its slot here, under the lock, instead of in a global sweep
            # before every claim (the conditional UPDATE leaves a submit that holds the row alone).
            held -= hit.assignments.filter(status=Assignment.Status.ACCEPTED, deadline__lte=now).update(
                status=Assignment.Status.ABANDONED)
        if held >= hit.max_assignments or mine:
            hit_sync_status(hit, now=now)  # a stale "assignable" must not shortlist it again
            return None, False
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    hit=hit, worker=worker, accepted_at=now, deadline=now + hit.assignment_duration
                )
        except IntegrityError:  # the (hit, worker) constraint: taken by this worker meanwhile
            return None, False
        # The counts above plus our insert give the new status without counting again.
        status = Hit.Status.ASSIGNABLE if held + 1 < hit.max_assignments else Hit.Status.UNASSIGNABLE
        if hit.status != status and hit.status != Hit.Status.REVIEWING:
            hit_set_status(hit, status)
        return assignment, False


def _hit_locked_for_claim(hit_id: int, *, now: datetime) -> Hit | None:
    """The HIT, alive and not disposed, locked unless another claim holds it (then None), with its unit,
    layer and batch loaded: `Hit.objects.select_for_update(skip_locked=True, of=("self",))
    .select_related(*HIT_SHOWN).filter(pk=hit_id, expires_at__gt=now).exclude(status=DISPOSED).first()`."""
    tables = h, u, lay, b = _HIT, _UNIT, _LAYER, _BATCH
    row = fetch_one(
        f"SELECT {columns(*tables)} FROM {h.name}"
        f" JOIN {u.name} ON u.id = h.unit_id JOIN {lay.name} ON lay.id = u.layer_id JOIN {b.name} ON b.id = h.batch_id"
        f" WHERE h.id = %s AND h.expires_at > %s AND h.status <> %s{for_update(of=('h',), skip_locked=True)}",
        [hit_id, now, Hit.Status.DISPOSED])
    if row is None:
        return None
    hit, unit, layer, batch = load_row(row, *tables)
    cache_related(unit, "layer", layer)
    cache_related(hit, "unit", unit)
    cache_related(hit, "batch", batch)
    return hit


def _own_assignment_for_update(*, assignment_id: int, worker: User) -> Assignment:
    # Lock the assignment and its HIT only: a plain FOR UPDATE with these joins would lock the unit and
    # the batch rows too, and every submit of a batch would queue behind the others on that one row.
    # Plain SQL (the submit's hot path): `Assignment.objects.select_for_update(of=("self", "hit"))
    # .select_related("hit", "hit__unit", "hit__batch").filter(pk=assignment_id).first()`.
    # The project's quality rule rides along (two probes of its one settings row), for the submit to apply.
    tables = a, h, u, b = _ASSIGNMENT, _HIT, _UNIT, _BATCH
    cs = ChannelSettings._meta.db_table
    rule_of = (f"(SELECT cs.quality_min_pass_rate FROM {cs} cs WHERE cs.project_id = b.project_id),"
               f" (SELECT cs.quality_min_answers FROM {cs} cs WHERE cs.project_id = b.project_id)")
    row = fetch_one(
        f"SELECT {columns(*tables)}, {rule_of} FROM {a.name} JOIN {h.name} ON h.id = a.hit_id"
        f" JOIN {u.name} ON u.id = h.unit_id JOIN {b.name} ON b.id = h.batch_id WHERE a.id = %s"
        f"{for_update(of=('a', 'h'))}", [assignment_id])
    if row is None:
        raise NotFound(f"There is no assignment {assignment_id}.")
    assignment, hit, unit, batch = load_row(row, *tables)
    pass_rate, min_answers = row[-2], row[-1]
    assignment.quality_rule = None if pass_rate is None else QualityRule(float(pass_rate), int(min_answers))
    cache_related(hit, "unit", unit)
    cache_related(hit, "batch", batch)
    cache_related(assignment, "hit", hit)
    if assignment.worker_id != worker.pk:  # someone else's: answered as if it did not exist (ids reveal nothing)
        raise NotFound(f"There is no assignment {assignment_id}.")
    return assignment


@transaction.atomic
def assignment_return(*, assignment_id: int, worker: User, now: datetime | None = None) -> Assignment:
    """Give the HIT back: the slot is offered to others (never again to this worker)."""
    now = now or timezone.now()
    assignment = _own_assignment_for_update(assignment_id=assignment_id, worker=worker)
    if assignment.status != Assignment.Status.ACCEPTED:
        raise Conflict(f"This assignment is {assignment.get_status_display().lower()}; it cannot be returned.")
    assignment.status = Assignment.Status.RETURNED
    assignment.save(update_fields=["status"])
    hit_sync_status(assignment.hit, now=now)
    return assignment


@transaction.atomic
def hit_skip(*, assignment_id: int, worker: User, now: datetime | None = None) -> Skip:
    """Return the assignment and never offer this HIT to the worker again."""
    assignment = assignment_return(assignment_id=assignment_id, worker=worker, now=now)
    skip, _ = Skip.objects.get_or_create(hit=assignment.hit, worker=worker)
    return skip


def _same_answer(annotation: Annotation, *, word, category, description, confidence, marked: set[int]) -> bool:
    marked_before = set(annotation.non_fitting.values_list("pk", flat=True))
    return (annotation.word == word and annotation.category == category and annotation.description == description
            and annotation.confidence == confidence and marked_before == marked)


@transaction.atomic
def annotation_submit(
    *, assignment_id: int, worker: User, word: str, category: str, non_fitting: Iterable[int] = (),
    confidence: int | None = None, description: str = "", now: datetime | None = None,
) -> Annotation:
    """Record the answer of an accepted assignment. A repeat of the same answer returns the first."""
    now = now or timezone.now()
    assignment = _own_assignment_for_update(assignment_id=assignment_id, worker=worker)
    if assignment.hit.kind == HitKind.VERIFY:
        raise Conflict("This is a verify HIT: answer yes, no or unsure (crowd.verify.verdict_submit).")
    word = clean_word(word)
    description = (description or "").strip()
    errors = validate_answer(word=word, category=category, description=description, confidence=confidence)
    try:
        marked_ids = {int(pk) for pk in non_fitting}
    except (TypeError, ValueError):
        errors["non_fitting"] = ["Marked images must be given by their exemplar ids (integers)."]
        marked_ids = set()
    shown = hit_exemplars(assignment.hit)
    shown_ids = {ex.pk for ex in shown}
    strangers = sorted(marked_ids - shown_ids)
    if strangers:
        errors["non_fitting"] = [f"Images {', '.join(map(str, strangers))} are not shown in this HIT."]
    top_marked = {ex.pk for ex in shown if ex.pk in marked_ids and ex.kind == ex.Kind.TOP}

    if assignment.status != Assignment.Status.ACCEPTED:
        existing = Annotation.objects.filter(assignment=assignment).first()
        if existing is not None and not errors and _same_answer(
            existing, word=word, category=category, description=description, confidence=confidence,
            marked=top_marked,
        ):
            return existing  # a double submit of the same answer is harmless
        if existing is not None:
            raise Conflict("This assignment was already submitted with a different answer; it cannot be changed.")
        raise Conflict(f"This assignment is {assignment.get_status_display().lower()}; it can no longer be submitted.")
    if assignment.deadline <= now:
        raise Conflict("The time for this assignment ran out; it has been offered to someone else.")
    if errors:
        raise InvalidAnswer(errors)

    sentinels = [ex for ex in shown if ex.kind == ex.Kind.SENTINEL]
    missed = sum(1 for ex in sentinels if ex.pk not in marked_ids)
    unit = assignment.hit.unit
    gold_correct = None
    if unit.is_gold or assignment.hit.is_gold:
        gold_correct = matches_gold(word=word, category=category, gold_word=unit.gold_word,
                                    gold_category=unit.gold_category)
    annotation = Annotation.objects.create(
        assignment=assignment, word=word, category=category, description=description, confidence=confidence,
        gold_correct=gold_correct, sentinels_shown=len(sentinels), sentinels_missed=missed,
    )
    if top_marked:  # a new annotation has no marks yet: add, without reading the empty set first
        annotation.non_fitting.add(*sorted(top_marked))
    # An outside crowd's answer waits for its marketplace to confirm it (units/crowd/confirmation.py), which
    # then flags missed sentinels and applies the quality rule: a made-up worker id must not do either.
    outside = assignment.hit.batch.channel != Channel.SITE
    assignment.status = Assignment.Status.PENDING if outside else Assignment.Status.SUBMITTED
    assignment.submitted_at = now
    assignment.work_seconds = (now - assignment.accepted_at).total_seconds()
    assignment.auto_approve_at = now + timedelta(seconds=assignment.hit.auto_approval_delay_seconds)
    assignment.save(update_fields=["status", "submitted_at", "work_seconds", "auto_approve_at"])
    if outside:
        hit_sync_status(assignment.hit, now=now)
        return annotation
    if missed:
        annotator_flag(user=worker, reason=f"left {missed} low-activation sentinel image(s) marked as fitting "
                                           f"in assignment {assignment.pk}")
    hit_sync_status(assignment.hit, now=now)
    quality_rule_apply(worker=worker, project_id=assignment.hit.batch.project_id,  # the project's spam rule
                       rule=getattr(assignment, "quality_rule", True))
    return annotation


# How long after a skip the annotator may take it back (the next page offers "Undo skip").
SKIP_UNDO_SECONDS = 120


@transaction.atomic
def hit_skip_undo(*, skip_id: int, worker: User, now: datetime | None = None) -> Assignment | None:
    """Take back one's own recent skip: the Skip row goes, and the skipped assignment is live again when
    the HIT still has a free slot (returned as the assignment; None when the slot went to someone else).

    The assignment claimed automatically after the skip is given up silently (deleted, never answered),
    so the worker still holds one live assignment at a time and may be offered that HIT later.
    The (hit, worker) row is reused, never duplicated: "one assignment per HIT per worker" still holds.
    """
    now = now or timezone.now()
    skip = Skip.objects.select_for_update().filter(pk=skip_id).first()
    if skip is None:
        raise NotFound("There is no such skip to undo (it may have been undone already).")
    if skip.worker_id != worker.pk:  # someone else's: as if it did not exist
        raise NotFound("There is no such skip to undo (it may have been undone already).")
    if (now - skip.created_at).total_seconds() > SKIP_UNDO_SECONDS:
        raise Conflict(f"A skip can be undone for {SKIP_UNDO_SECONDS // 60} minutes only; this one is older.")
    AnnotatorProfile.objects.select_for_update().filter(user=worker).first()  # serialise with claims
    later = Assignment.objects.filter(worker=worker, status=Assignment.Status.ACCEPTED,
                                      accepted_at__gte=skip.created_at)
    if Annotation.objects.filter(assignment__worker=worker, assignment__submitted_at__gte=skip.created_at).exists():
        raise Conflict("You have handed in another HIT since this skip; it can no longer be undone.")
    hit = Hit.objects.select_for_update().get(pk=skip.hit_id)
    skip.delete()
    for other in later.exclude(hit=hit).select_related("hit"):
        other_hit = other.hit
        other.delete()
        hit_sync_status(other_hit, now=now)
    return _assignment_revive(hit=hit, worker=worker, now=now)


def _assignment_revive(*, hit: Hit, worker: User, now: datetime) -> Assignment | None:
    """Make the worker's returned/abandoned assignment of `hit` live again if a slot is free (the HIT is locked
    by the caller). The same row is reused, so the worker never holds two live slots of one HIT."""
    mine = hit.assignments.select_for_update().filter(worker=worker).first()
    if mine is None or mine.status not in (Assignment.Status.RETURNED, Assignment.Status.ABANDONED):
        return None
    if hit.status == Hit.Status.DISPOSED or hit.expires_at <= now:
        return None
    held = hit.assignments.filter(status__in=SLOT).exclude(status=Assignment.Status.ACCEPTED, deadline__lte=now).count()
    if held >= hit.max_assignments:
        return None
    mine.status, mine.accepted_at, mine.deadline = Assignment.Status.ACCEPTED, now, now + hit.assignment_duration
    mine.extended_at = None  # a new window may be extended once again
    mine.save(update_fields=["status", "accepted_at", "deadline", "extended_at"])
    hit_sync_status(hit, now=now)
    return mine


@transaction.atomic
def assignment_retake(*, assignment_id: int, worker: User, now: datetime | None = None) -> Assignment:
    """Take a HIT again after one's own assignment of it expired (abandoned), when a slot is still free.

    Exactly that case: a HIT the worker returned, skipped, handed in or was blocked from stays theirs no more.
    The abandoned row itself becomes live again (see SCHEDULER.md), so there is never a second row,
    let alone two live slots, of one HIT for one worker; locks in the claim's order (profile, then HIT).
    """
    now = now or timezone.now()
    _locked_claimable_profile(worker)
    found = Assignment.objects.filter(pk=assignment_id).values_list("hit_id", "worker_id").first()
    if found is None:
        raise NotFound(f"There is no assignment {assignment_id}.")
    if found[1] != worker.pk:  # someone else's: as if it did not exist
        raise NotFound(f"There is no assignment {assignment_id}.")
    hit = Hit.objects.select_for_update().get(pk=found[0])
    if not Qualification.objects.filter(user_id=worker.pk, project__hit_batches=hit.batch_id).exists():
        raise NotAllowed(NOT_QUALIFIED)  # unqualified for the HIT's project since it was taken
    assignment = Assignment.objects.select_for_update().get(pk=assignment_id)
    if assignment.status == Assignment.Status.ACCEPTED and assignment.deadline <= now:
        assignment.status = Assignment.Status.ABANDONED  # expired but not swept yet: that is this case
        assignment.save(update_fields=["status"])
    if assignment.status == Assignment.Status.ACCEPTED:
        raise Conflict("This assignment is still running: go on with it.")
    if assignment.status != Assignment.Status.ABANDONED or Skip.objects.filter(hit=hit, worker=worker).exists():
        raise Conflict(f"This assignment is {assignment.get_status_display().lower()}; only a HIT whose time "
                       "ran out can be taken again.")
    current = Assignment.objects.filter(worker=worker, status=Assignment.Status.ACCEPTED, deadline__gt=now).first()
    if current is not None:
        raise Conflict(f"You are working on HIT {current.hit_id}: hand it in or return it first.")
    revived = _assignment_revive(hit=hit, worker=worker, now=now)
    if revived is None:
        hit_sync_status(hit, now=now)
        raise Conflict("This HIT has no free slot any more (or it has expired); it went to other annotators.")
    return revived


# "Extend" is offered in the last EXTEND_WITHIN_SECONDS, once per assignment, by half the assignment's
# duration but at most EXTEND_MAX_SECONDS (a slot should not be held much past what the requester allowed).
EXTEND_WITHIN_SECONDS = 120
EXTEND_MAX_SECONDS = 10 * 60


def extension_seconds(hit: Hit) -> int:
    return min(hit.assignment_duration_seconds // 2, EXTEND_MAX_SECONDS)


def assignment_extended(assignment: Assignment) -> bool:
    return assignment.extended_at is not None


@transaction.atomic
def assignment_extend(*, assignment_id: int, worker: User, now: datetime | None = None) -> Assignment:
    """Push the deadline of one's own live assignment by `extension_seconds`, once, in its last 2 minutes."""
    now = now or timezone.now()
    assignment = _own_assignment_for_update(assignment_id=assignment_id, worker=worker)  # locks it and its HIT
    if assignment.status != Assignment.Status.ACCEPTED or assignment.deadline <= now:
        raise Conflict("Only a running assignment can be extended; this one is not (any more).")
    if assignment_extended(assignment):
        raise Conflict("This assignment was extended once already; it cannot be extended again.")
    left = (assignment.deadline - now).total_seconds()
    if left > EXTEND_WITHIN_SECONDS:
        raise Conflict(f"An assignment can be extended in its last {EXTEND_WITHIN_SECONDS // 60} minutes only "
                       f"({int(left)} s are left).")
    assignment.deadline += timedelta(seconds=extension_seconds(assignment.hit))
    assignment.extended_at = now
    assignment.save(update_fields=["deadline", "extended_at"])
    return assignment

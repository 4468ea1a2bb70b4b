"""Seed load-test jobs: layers of units with known truth, their HITs, and qualified annotators, in one
project or spread over several (one of them a private pool's).

Rows are bulk-created (a 512-unit job in a second or two); the pictures are not written, as the
API hands out their URLs and the benchmark never fetches them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from units.crowd.models import AnnotatorProfile, Hit, HitBatch, Qualification
from units.dissection.models import Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit
from units.projects.models import Pool
from units.projects.services import project_ensure

from .crowd import TRUTHS, truth_for

EXEMPLARS_PER_UNIT = 3


@dataclass
class Seeded:
    layer_ids: list[int]  # one per project, in project order
    batch_ids: list[int]
    truth: dict[int, tuple[str, str]]  # unit id -> (word, category)
    usernames: list[str]
    password: str
    pool_batch_id: int | None = None  # the private pool's batch, when there is one

    @property
    def layer_id(self) -> int:
        return self.layer_ids[0]

    @property
    def batch_id(self) -> int:
        return self.batch_ids[0]


PREFIX = "loadtest-"
# With several projects, this one's batch goes to a private pool: in the middle of the HIT ids, so the
# open crowd's shortlist scans walk past its HITs (the pool filter at work) and its members past theirs.
POOL_PROJECT = 1


def pool_member(index: int, projects: int) -> bool:
    """Whether the `index`-th annotator is in the private pool: one in `projects`, spread over the crowd."""
    return projects > 1 and index % projects == POOL_PROJECT


@transaction.atomic
def loadtest_seed(*, name: str, n_units: int, assignments: int, usernames: list[str], password: str,
                  seed: int = 0, duration_s: int = 900, projects: int = 1) -> Seeded:
    """Finished jobs named after `name` with `n_units` units in all, one HIT each, and qualified annotators.

    The units are split evenly over `projects` projects (loadtest-1, loadtest-2, ...), one job and one
    batch each. With one project, every annotator is qualified for it and its batch is open. With
    several, project POOL_PROJECT's batch goes to a private pool whose members are one annotator in
    `projects` (`pool_member`), qualified for that project only; the others are qualified for every
    open project. HITs left open by earlier benchmark runs (batches named loadtest-...) are disposed
    first, so this run's crowd works on this run's HITs; nothing else in the database is touched.
    """
    if projects < 1 or n_units < projects:
        raise ValueError("Give at least one project and at least one unit per project.")
    Hit.objects.filter(batch__name__startswith=PREFIX).exclude(status=Hit.Status.DISPOSED).update(
        status=Hit.Status.DISPOSED)
    User = get_user_model()
    hashed = make_password(password)
    users = User.objects.bulk_create([User(username=u, password=hashed) for u in usernames])
    AnnotatorProfile.objects.bulk_create([AnnotatorProfile(user=u) for u in users])
    truths = [truth_for(i, seed=seed) for i in range(n_units)]
    sizes = [n_units // projects + (k < n_units % projects) for k in range(projects)]
    now = timezone.now()
    seeded = Seeded(layer_ids=[], batch_ids=[], truth={}, usernames=list(usernames), password=password)
    first = 0
    for k, size in enumerate(sizes):
        project = project_ensure(name=f"{PREFIX}{k + 1}" if projects > 1 else PREFIX.rstrip("-"))
        pool = None
        if projects > 1 and k == POOL_PROJECT:
            pool = Pool.objects.create(project=project, name=f"{name} pool")
            pool.members.add(*[u for i, u in enumerate(users) if pool_member(i, projects)])
        qualified = [u for i, u in enumerate(users) if pool_member(i, projects) == (pool is not None)]
        Qualification.objects.bulk_create([Qualification(user=u, project=project, qualified_at=now)
                                           for u in qualified], ignore_conflicts=True)
        layer, batch, units = _job(project=project, name=f"{name}-p{k + 1}" if projects > 1 else name,
                                   truths=truths[first:first + size], assignments=assignments,
                                   duration_s=duration_s, pool=pool)
        seeded.layer_ids.append(layer.pk)
        seeded.batch_ids.append(batch.pk)
        seeded.truth.update({u.pk: t for u, t in zip(units, truths[first:first + size])})
        if pool is not None:
            seeded.pool_batch_id = batch.pk
        first += size
    return seeded


def _job(*, project, name: str, truths: list[tuple[str, str]], assignments: int, duration_s: int,
         pool: Pool | None) -> tuple[Layer, HitBatch, list[Unit]]:
    """One project's finished job, its layer of units with these truths, and one batch of their HITs."""
    network = Network.objects.create(project=project, name=f"{name}-net", architecture="mixturenet", num_classes=45)
    dataset = ProbeDataset.objects.create(
        project=project, name=f"{name}-data", kind="mixture", path=name, num_images=1000
    )
    Concept.objects.bulk_create([
        Concept(dataset=dataset, number=i + 1, name=word, category=category)
        for i, ((word, category), _) in enumerate(t for t in TRUTHS if t[0][0])
    ])
    job = DissectionJob.objects.create(
        project=project,
        network=network,
        dataset=dataset,
        layers=["conv3"],
        top_k=EXEMPLARS_PER_UNIT,
        status=DissectionJob.Status.SUCCEEDED,
        progress=1.0,
    )
    layer = Layer.objects.create(job=job, name="conv3", num_units=len(truths))
    units = Unit.objects.bulk_create([
        Unit(layer=layer, index=i, threshold=0.5, max_activation=1.0, iou_label=word, iou_category=category,
             iou_score=0.1)
        for i, (word, category) in enumerate(truths)
    ])
    Exemplar.objects.bulk_create([
        Exemplar(unit=unit, rank=r, image_index=r, image_name=f"img{r}.png", score=1.0 - r / 10,
                 picture=f"jobs/{job.pk}/conv3/u{unit.index:04d}_r{r:02d}.png")
        for unit in units for r in range(EXEMPLARS_PER_UNIT)
    ])
    batch = HitBatch.objects.create(project=project, pool=pool, name=f"{name} batch", assignments_per_hit=assignments,
                                    assignment_duration_seconds=duration_s, exemplars_shown=EXEMPLARS_PER_UNIT)
    batch.layers.add(layer)
    expires = timezone.now() + timedelta(days=1)
    Hit.objects.bulk_create([
        Hit(batch=batch, unit=unit, max_assignments=assignments, assignment_duration_seconds=duration_s,
            exemplars_shown=EXEMPLARS_PER_UNIT, expires_at=expires)
        for unit in units
    ])
    return layer, batch, units

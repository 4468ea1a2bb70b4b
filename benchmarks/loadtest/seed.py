"""Seed a load-test job: one layer of units with known truth, their HITs, and qualified annotators.

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

from units.crowd.models import AnnotatorProfile, Hit, HitBatch
from units.dissection.models import Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit
from units.projects.services import project_ensure

from .crowd import TRUTHS, truth_for

EXEMPLARS_PER_UNIT = 3


@dataclass
class Seeded:
    layer_id: int
    batch_id: int
    truth: dict[int, tuple[str, str]]  # unit id -> (word, category)
    usernames: list[str]
    password: str


PREFIX = "loadtest-"


@transaction.atomic
def loadtest_seed(*, name: str, n_units: int, assignments: int, usernames: list[str], password: str,
                  seed: int = 0, duration_s: int = 900) -> Seeded:
    """A finished job named `name` with `n_units` units, one HIT each, and qualified annotators.

    HITs left open by earlier benchmark runs (batches named loadtest-...) are disposed first, so
    this run's crowd works on this run's HITs; nothing else in the database is touched.
    """
    Hit.objects.filter(batch__name__startswith=PREFIX).exclude(status=Hit.Status.DISPOSED).update(
        status=Hit.Status.DISPOSED)
    project = project_ensure(name=PREFIX.rstrip("-") or "loadtest")
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
    layer = Layer.objects.create(job=job, name="conv3", num_units=n_units)
    truths = [truth_for(i, seed=seed) for i in range(n_units)]
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
    batch = HitBatch.objects.create(project=project, name=f"{name} batch", assignments_per_hit=assignments,
                                    assignment_duration_seconds=duration_s, exemplars_shown=EXEMPLARS_PER_UNIT)
    batch.layers.add(layer)
    expires = timezone.now() + timedelta(days=1)
    Hit.objects.bulk_create([
        Hit(batch=batch, unit=unit, max_assignments=assignments, assignment_duration_seconds=duration_s,
            exemplars_shown=EXEMPLARS_PER_UNIT, expires_at=expires)
        for unit in units
    ])
    User = get_user_model()
    hashed = make_password(password)
    users = User.objects.bulk_create([User(username=u, password=hashed) for u in usernames])
    now = timezone.now()
    AnnotatorProfile.objects.bulk_create([AnnotatorProfile(user=u, qualified_at=now) for u in users])
    return Seeded(layer_id=layer.pk, batch_id=batch.pk, truth={u.pk: t for u, t in zip(units, truths)},
                  usernames=list(usernames), password=password)

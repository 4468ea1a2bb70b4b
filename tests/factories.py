"""Row factories for tests: users by role, a dissected job with units and exemplars, HITs."""
from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from PIL import Image

from units.dissection.models import (
    Concept, DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore,
)
from annotate_site.roles import REQUESTERS_GROUP
from units.crowd.qualification import mark_qualified

PASSWORD = "correct-horse-battery-1"
_seq = itertools.count(1)
# The project every factory row goes into unless a test names another; requesters made by
# make_user(requester=True) are its members (role requester), as after the Default migration.
LAB = "lab"


def lab_project():
    from units.projects.services import project_ensure

    return project_ensure(name=LAB)


def make_project(name: str | None = None, *, owner=None, members: dict | None = None):
    """A project with an owner and members ({user: role})."""
    from units.projects.models import Membership, Project

    project = Project.objects.create(name=name or f"project{next(_seq)}", created_by=owner)
    roles = {owner: "owner"} if owner else {}
    roles.update(members or {})
    for user, role in roles.items():
        Membership.objects.create(project=project, user=user, role=role)
    return project


def make_user(username: str | None = None, *, qualified=False, requester: bool = False, admin: bool = False):
    """A user; `qualified`: True for the lab project, or a project, or a list of projects."""
    User = get_user_model()
    username = username or f"user{next(_seq)}"
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.org")
    if admin:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    if requester:
        from units.projects.models import Membership

        group, _ = Group.objects.get_or_create(name=REQUESTERS_GROUP)
        user.groups.add(group)
        Membership.objects.create(project=lab_project(), user=user, role="requester")
    if qualified:
        projects = [lab_project()] if qualified is True else (
            list(qualified) if isinstance(qualified, (list, tuple)) else [qualified])
        for project in projects:
            mark_qualified(user, project)
    return user


def _write_picture(relpath: str, colour: tuple[int, int, int]) -> None:
    path = Path(settings.MEDIA_ROOT) / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)


def make_job(
    *,
    layers: dict[str, int] | None = None,
    exemplars_per_unit: int = 15,
    concepts: list[tuple[str, str]] | None = None,
    write_pictures: bool = False,
    status: str = DissectionJob.Status.SUCCEEDED,
    project=None,
) -> DissectionJob:
    """A finished dissection job: layers with units, exemplars and IoU scores (no engine run)."""
    n = next(_seq)
    layers = layers or {"conv3": 4}
    concepts = concepts or [(str(d), "object") for d in range(10)]
    project = project or lab_project()
    network = Network.objects.create(project=project, name=f"net{n}", architecture="mixturenet", num_classes=45)
    dataset = ProbeDataset.objects.create(project=project, name=f"probe{n}", kind="mixture", path=f"probe{n}",
                                          num_images=100)
    concept_rows = [
        Concept.objects.create(dataset=dataset, number=i + 1, name=name, category=cat)
        for i, (name, cat) in enumerate(concepts)
    ]
    job = DissectionJob.objects.create(
        project=project, network=network, dataset=dataset, layers=list(layers), top_k=exemplars_per_unit, status=status,
        progress=1.0 if status == DissectionJob.Status.SUCCEEDED else 0.0,
    )
    for layer_name, n_units in layers.items():
        layer = Layer.objects.create(job=job, name=layer_name, num_units=n_units)
        for u in range(n_units):
            best = concept_rows[u % len(concept_rows)]
            unit = Unit.objects.create(
                layer=layer, index=u, threshold=0.5, max_activation=1.0 + u,
                iou_label=best.name, iou_category=best.category, iou_score=0.02 * (u + 1),
            )
            UnitConceptScore.objects.create(unit=unit, concept=best, rank=0, iou=unit.iou_score)
            for r in range(exemplars_per_unit):
                rel = f"jobs/{job.pk}/{layer_name}/u{u:04d}_r{r:02d}.png"
                if write_pictures:
                    _write_picture(rel, (20 * r % 255, 40, 200))
                Exemplar.objects.create(
                    unit=unit, rank=r, image_index=r * 7 + u, image_name=f"img{r * 7 + u:05d}.png",
                    score=10.0 - r * 0.1, picture=rel, plain=rel,
                )
    return job


def make_hits(job: DissectionJob, *, assignments: int = 3, duration_s: int = 900, lifetime_s: int = 86400):
    """HITs for every unit of a job, created directly (tests of publishing use the service)."""
    from units.crowd.models import Hit, HitBatch

    batch = HitBatch.objects.create(
        project_id=job.project_id, name=f"batch for job {job.pk}", assignments_per_hit=assignments,
        assignment_duration_seconds=duration_s, lifetime_seconds=lifetime_s,
    )
    batch.layers.set(job.layer_set.all())
    now = timezone.now()
    return [
        Hit.objects.create(
            batch=batch, unit=unit, max_assignments=assignments, assignment_duration_seconds=duration_s,
            lifetime_seconds=lifetime_s, expires_at=now + timedelta(seconds=lifetime_s),
        )
        for unit in Unit.objects.filter(layer__job=job).order_by("layer_id", "index")
    ]


# -- a real (tiny) pipeline: mixture dataset + MixtureNet, registered through the services --------


def write_tiny_mixture(out_dir: Path, *, n_images: int = 12, seed: int = 0) -> Path:
    """A mixture-of-digits dataset small enough for tests (32x32 canvas, 14 px digits)."""
    from tasks.engine.mixture import MixtureSpec, make_mixture

    if (out_dir / "index.csv").is_file():
        return out_dir
    return make_mixture(out_dir, n_images=n_images, seed=seed, spec=MixtureSpec(source="digits", canvas=32,
                                                                                digit_size=14))


def make_registered_pipeline(dataset_dir: Path, *, name: str | None = None, layers=("conv1", "conv3"),
                             top_k: int = 3, shards: int = 1, created_by=None, project=None):
    """Network (seeded random MixtureNet, no checkpoint) + mixture dataset + a pending job."""
    from units.dissection.services import (
        DatasetSource,
        JobSettings,
        NetworkInput,
        dataset_register,
        job_create,
        network_register,
    )

    name = name or f"tiny{next(_seq)}"
    project = project or lab_project()
    network = network_register(
        project=project, name=f"{name}-net", architecture="mixturenet", inputs=NetworkInput(num_classes=45),
        created_by=created_by,
    )
    dataset = dataset_register(
        project=project,
        name=f"{name}-data",
        kind="mixture",
        source=DatasetSource(path=str(dataset_dir)),
        created_by=created_by,
        any_path=True,
    )  # a tmp folder, registered as the operator's command would
    return job_create(network=network, dataset=dataset,
                      options=JobSettings(list(layers), top_k=top_k, batch_size=8, shards=shards),
                      created_by=created_by)


def make_mturk_sandbox_hit(media_root: Path, *, exemplars_per_unit: int = 3):
    """One HIT of a one-unit job on the MTurk sandbox channel (published there as MTHIT0, $0.10), its unit
    with a sentinel picture beside its top ones; returned with its batch loaded."""
    from decimal import Decimal

    from units.crowd.models import Channel, Hit, HitBatch

    job = make_job(layers={"conv3": 1}, exemplars_per_unit=exemplars_per_unit, write_pictures=True)
    hit = make_hits(job, assignments=3)[0]
    rel = f"jobs/{job.pk}/conv3/sentinels/s.png"
    (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (9, 9, 9)).save(media_root / rel)
    Exemplar.objects.create(unit=hit.unit, kind=Exemplar.Kind.SENTINEL, rank=0, image_index=99,
                            image_name="s.png", score=0.0, picture=rel, plain=rel)
    HitBatch.objects.filter(pk=hit.batch_id).update(channel=Channel.MTURK_SANDBOX, sentinels=1,
                                                    reward=Decimal("0.10"))
    Hit.objects.filter(pk=hit.pk).update(external_id="MTHIT0")
    return Hit.objects.select_related("batch").get(pk=hit.pk)


def make_mturk_sandbox_verify_hit():
    """One verify HIT (the IoU label of a one-unit job, its score lifted above the threshold) on the MTurk
    sandbox channel, published there as MTHIT0."""
    from django.db.models import F

    from units.crowd.models import Channel, Hit, HitBatch
    from units.crowd.verify import hit_publish_verify

    job = make_job(layers={"conv3": 1}, exemplars_per_unit=3, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)
    batch = hit_publish_verify(layers=job.layer_set.all(), sources=["iou"])
    HitBatch.objects.filter(pk=batch.pk).update(channel=Channel.MTURK_SANDBOX)
    hit = batch.hits.get()
    Hit.objects.filter(pk=hit.pk).update(external_id="MTHIT0")
    return hit

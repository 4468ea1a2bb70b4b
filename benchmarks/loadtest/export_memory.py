"""`loadtest --export-memory N`: seed N counted annotations, then write every export kind in a child process
and report its peak resident memory (ru_maxrss), so that a writer holding all rows in memory shows up.

Each export runs in its own fresh process: ru_maxrss is a high-water mark, so one process per export keeps
the figures apart; the child reports its peak before the export (Django loaded) and after it (VmHWM).
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from units.crowd.models import Annotation, Assignment, Hit, HitBatch
from units.results.models import ExportJob

from ..peak_memory import peak_rss_mib
from .seed import PREFIX, loadtest_seed

PER_HIT = 5
BATCH = 5000


@transaction.atomic
def seed_annotations(n: int) -> tuple[int, int]:
    """n submitted answers (5 per unit, 5 annotators); returns (layer id, batch id). Bulk writes, no signals."""
    name = f"{PREFIX}export-{secrets.token_hex(3)}"
    n_units = -(-n // PER_HIT)
    usernames = [f"{name}-w{i}" for i in range(PER_HIT)]
    seeded = loadtest_seed(name=name, n_units=n_units, assignments=PER_HIT, usernames=usernames,
                           password=secrets.token_urlsafe(12))
    from django.contrib.auth import get_user_model

    workers = list(get_user_model().objects.filter(username__in=usernames).order_by("username"))
    now = timezone.now()
    hit_ids = list(Hit.objects.filter(batch_id=seeded.batch_id).order_by("id").values_list("id", flat=True))
    pairs = [(h, w) for h in hit_ids for w in workers][:n]
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start:start + BATCH]
        assignments = Assignment.objects.bulk_create([
            Assignment(hit_id=h, worker=w, status=Assignment.Status.SUBMITTED, accepted_at=now, deadline=now,
                       submitted_at=now, work_seconds=30.0)
            for h, w in chunk
        ])
        Annotation.objects.bulk_create([
            Annotation(assignment=a, word=f"word{a.hit_id % 97}", category="object",
                       description=f"a description of what unit {a.hit_id} shows, long enough to weigh something")
            for a in assignments
        ])
    return seeded.layer_id, seeded.batch_id


def export_jobs(layer_id: int, batch_id: int) -> list[ExportJob]:
    K = ExportJob.Kind
    project_id = HitBatch.objects.values_list("project_id", flat=True).get(pk=batch_id)
    return [ExportJob.objects.create(project_id=project_id, kind=K.UNITS_CSV, layer_id=layer_id),
            ExportJob.objects.create(project_id=project_id, kind=K.UNITS_JSON, layer_id=layer_id),
            ExportJob.objects.create(project_id=project_id, kind=K.TALLY, layer_id=layer_id),
            ExportJob.objects.create(project_id=project_id, kind=K.MTURK, batch_id=batch_id),
            ExportJob.objects.create(project_id=project_id, kind=K.MILAN, layer_id=layer_id)]


def measure(export: ExportJob) -> dict:
    """Run one export in a fresh `python -m benchmarks.loadtest --export-child ID` process; its JSON line back."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.loadtest", "--export-child", str(export.pk)],
                         cwd=settings.BASE_DIR, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"export {export.kind} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_child(export_id: int) -> dict:
    """In the child: write the export to a temporary file and report peak RSS before and after."""
    from units.results.exports import export_write

    export = ExportJob.objects.select_related("layer__job__network").get(pk=export_id)
    before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.out"
        export_write(export, path)
        size = path.stat().st_size
    return {"kind": export.kind, "before_mib": round(before, 1), "peak_mib": round(peak_rss_mib(), 1),
            "bytes": size}

"""Benchmark of the paint endpoint: python -m benchmarks.paint_bench (--job ID | --demo-out DIR) [--http] [--edits 50]

Without --http it times what POST /api/jobs/<id>/paint/ does apart from HTTP: pick the units, edit
one generated image with the engine, encode both pictures as PNG data URLs. With --http every edit
is a real POST to the endpoint through Django's whole request stack (middleware, session sign-in,
DRF, serializers, JSON), made by the job's project owner with Django's test client. Prints the first
edit (which loads the generator) apart from the rest: median, p95, max and rate.

--demo-out DIR takes the generator and segmenter of a `python -m tasks.engine gan demo --out DIR`
run, registers them in a project of their own owned by a benchmark user, and dissects the demo's
layer on --samples generated images in this process, so the edits run on the demo's generator.
"""
import statistics
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmarks.site import setup_django

BENCH_USER = "paint-bench"


def job_from_demo(out_dir: Path, samples: int):
    """A finished generator job of the demo's generator and segmenter, in a new project owned by BENCH_USER."""
    import torch
    from django.contrib.auth.models import User

    from units.dissection.models import DissectionJob
    from units.dissection.services import DatasetSource, JobSettings, dataset_register, job_create, job_start
    from units.dissection.services import network_register
    from units.projects.services import project_create

    gen_file, seg_file = out_dir / "models" / "generator.pt", out_dir / "models" / "segmenter.pt"
    if not gen_file.is_file() or not seg_file.is_file():
        raise CommandError(f"{out_dir} has no models/generator.pt and models/segmenter.pt; run `python -m "
                           f"tasks.engine gan demo --out {out_dir}` first.")
    arch = torch.load(gen_file, map_location="cpu", weights_only=True)["arch"]
    user, _ = User.objects.get_or_create(username=BENCH_USER)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    project = project_create(name=f"paint bench {stamp}", created_by=user)
    network = network_register(project=project, name=f"demo-{arch}", architecture=arch, checkpoint=gen_file,
                               created_by=user)
    segmenter = dataset_register(project=project, name="demo-digitseg", kind="segmenter",
                                 source=DatasetSource(path=str(seg_file)), created_by=user, any_path=True)
    job = job_create(network=network, dataset=segmenter, created_by=user,
                     options=JobSettings(["layer2"], top_k=5, quantile=0.02, iou_rule="original", batch_size=100,
                                         samples=samples))
    job_start(job=job, background=False)
    job = DissectionJob.objects.select_related("network").get(pk=job.pk)
    if job.status != DissectionJob.Status.SUCCEEDED:
        raise CommandError(f"the demo generator's job {job.pk} ended {job.status}: {job.error_message}")
    return job


class Command(BaseCommand):
    help = "Time paint edits (remove/insert, box and grid regions) on a finished generator job."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--job", type=int, help="a finished generator job")
        parser.add_argument("--demo-out", type=Path, help="a `gan demo` folder: bench its generator (see above)")
        parser.add_argument("--samples", type=int, default=200, help="with --demo-out: images the job dissects")
        parser.add_argument("--http", action="store_true", help="time real POSTs to the endpoint")
        parser.add_argument("--edits", type=int, default=50)
        parser.add_argument("--units", type=int, default=3, help="units edited at once")

    def handle(self, *args, **opts) -> None:
        from units.dissection.errors import DissectionError
        from units.dissection.models import DissectionJob

        if (opts["job"] is None) == (opts["demo_out"] is None):
            raise CommandError("give exactly one of --job ID or --demo-out DIR")
        if opts["demo_out"] is not None:
            job = job_from_demo(opts["demo_out"], opts["samples"])
        else:
            job = DissectionJob.objects.select_related("network").filter(pk=opts["job"]).first()
        if job is None:
            raise CommandError(f"No job {opts['job']}.")
        layer = job.layer_set.order_by("id").first()
        if layer is None:
            raise CommandError(f"Job {job.pk} has no layers; run it first.")
        edit = self._http_edit(job) if opts["http"] else self._direct_edit(job)
        grid = [[int(2 <= r <= 5 and 2 <= c <= 5) for c in range(8)] for r in range(8)]
        times = []
        try:
            for i in range(opts["edits"] + 1):
                units = [(i * 7 + k * 5) % layer.num_units + 1 for k in range(opts["units"])]
                region = {"box": [8, 8, 24, 24]} if i % 2 else {"grid": grid}
                started = time.perf_counter()
                edit(layer.name, i, "remove" if i % 2 else "insert", sorted(set(units)), region)
                times.append(time.perf_counter() - started)
        except DissectionError as exc:
            raise CommandError(str(exc)) from None
        rest = times[1:]
        how = "POST /api/jobs/<id>/paint/" if opts["http"] else "paint_edit + payload, no HTTP"
        self.stdout.write(
            f"paint on job {job.pk} ({job.network.architecture}, {layer.name}, {opts['units']} units; {how}): "
            f"first edit (loads the generator) {times[0] * 1000:.0f} ms; next {len(rest)}: median "
            f"{statistics.median(rest) * 1000:.1f} ms, p95 {sorted(rest)[int(0.95 * (len(rest) - 1))] * 1000:.1f} ms, "
            f"max {max(rest) * 1000:.1f} ms, {len(rest) / sum(rest):.1f} edits/s"
        )

    @staticmethod
    def _direct_edit(job):
        from units.dissection.paint import PaintRequest, paint_edit, paint_payload

        def edit(layer: str, seed: int, mode: str, units: list[int], region: dict) -> None:
            paint_payload(paint_edit(job=job, request=PaintRequest(layer_name=layer, seed=seed, mode=mode,
                                                                   units=units, **region)))
        return edit

    @staticmethod
    def _http_edit(job):
        from django.test import Client
        from django.urls import reverse

        from units.projects.models import Membership

        owner = Membership.objects.filter(project=job.network.project, role="owner").select_related("user").first()
        if owner is None:
            raise CommandError(f"job {job.pk}'s project has no owner to send the requests as")
        client = Client()
        client.force_login(owner.user)
        url = reverse("api-job-paint", args=[job.pk])

        def edit(layer: str, seed: int, mode: str, units: list[int], region: dict) -> None:
            response = client.post(url, {"layer": layer, "seed": seed, "mode": mode, "units": units, **region},
                                   content_type="application/json")
            if response.status_code != 200:
                raise CommandError(f"POST {url} answered {response.status_code}: {response.content[:300]!r}")
        return edit


if __name__ == "__main__":
    setup_django()
    Command().run_from_argv(["python -m benchmarks.paint_bench", "", *sys.argv[1:]])

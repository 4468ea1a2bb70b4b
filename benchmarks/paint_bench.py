"""Benchmark of the paint endpoint's work: python -m benchmarks.paint_bench --job ID [--edits 50]

Times what POST /api/jobs/<id>/paint/ does apart from HTTP: pick the units, edit one generated
image with the engine, encode both pictures as PNG data URLs. Prints the first edit (which loads
the generator) apart from the rest, and the rate.
"""
import statistics
import time

import sys

from django.core.management.base import BaseCommand, CommandError

from benchmarks.site import setup_django


class Command(BaseCommand):
    help = "Time paint edits (remove/insert, box and grid regions) on a finished generator job."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--job", type=int, required=True, help="a finished generator job")
        parser.add_argument("--edits", type=int, default=50)
        parser.add_argument("--units", type=int, default=3, help="units edited at once")

    def handle(self, *args, **opts) -> None:
        from units.dissection.errors import DissectionError
        from units.dissection.models import DissectionJob
        from units.dissection.paint import PaintRequest, paint_edit, paint_payload

        job = DissectionJob.objects.select_related("network").filter(pk=opts["job"]).first()
        if job is None:
            raise CommandError(f"No job {opts['job']}.")
        layer = job.layer_set.order_by("id").first()
        if layer is None:
            raise CommandError(f"Job {job.pk} has no layers; run it first.")
        grid = [[int(2 <= r <= 5 and 2 <= c <= 5) for c in range(8)] for r in range(8)]
        times = []
        try:
            for i in range(opts["edits"] + 1):
                units = [(i * 7 + k * 5) % layer.num_units + 1 for k in range(opts["units"])]
                region = {"box": [8, 8, 24, 24]} if i % 2 else {"grid": grid}
                started = time.perf_counter()
                paint_payload(paint_edit(job=job, request=PaintRequest(
                    layer_name=layer.name, seed=i, mode="remove" if i % 2 else "insert", units=sorted(set(units)),
                    **region)))
                times.append(time.perf_counter() - started)
        except DissectionError as exc:
            raise CommandError(str(exc)) from None
        rest = times[1:]
        self.stdout.write(
            f"paint on job {job.pk} ({job.network.architecture}, {layer.name}, {opts['units']} units): "
            f"first edit (loads the generator) {times[0]:.3f} s; next {len(rest)}: median "
            f"{statistics.median(rest):.3f} s, "
            f"p95 {sorted(rest)[int(0.95 * (len(rest) - 1))]:.3f} s, max {max(rest):.3f} s, "
            f"{len(rest) / sum(rest):.1f} edits/s"
        )


if __name__ == "__main__":
    setup_django()
    Command().run_from_argv(["python -m benchmarks.paint_bench", "", *sys.argv[1:]])

"""Create and run a dissection job: python manage.py run_dissection --network N --dataset D --layers conv3 [...]

Without a broker the job runs here; with one it is queued for the gpu workers (`--wait` to follow it).
`--job ID` re-runs an existing job instead.
"""
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from units.dissection.models import DissectionJob, Network, ProbeDataset
from units.dissection.services import DissectionError, JobSettings, job_create, job_start
from units.projects.models import Project
from units.projects.selectors import project_named


class Command(BaseCommand):
    help = "Create (or re-run with --job) a dissection job and run or queue it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, help="re-run this job")
        parser.add_argument("--project", help="the project's name or id (where the network and dataset are)")
        parser.add_argument("--network", help="network name")
        parser.add_argument("--dataset", help="dataset name")
        parser.add_argument("--layers", nargs="+", help="layer names, e.g. conv1 conv2 conv3")
        parser.add_argument("--top-k", type=int, default=15)
        parser.add_argument("--quantile", type=float, default=0.005)
        parser.add_argument("--iou-rule", default="lite", choices=["lite", "original"])
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--shards", type=int, default=1)
        parser.add_argument("--grid", help="HEIGHTxWIDTH: the grid of token layers whose tokens are no square grid")
        parser.add_argument("--samples", type=int, help="generators: samples dissected (default 1000)")
        parser.add_argument("--sample-seed", type=int, default=0, help="generators: the z stream")
        parser.add_argument("--wait", action="store_true", help="with a broker: wait until the job finishes")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            if opts["job"]:
                job = DissectionJob.objects.filter(pk=opts["job"]).first()
                if job is None:
                    raise CommandError(f"No job {opts['job']}.")
            else:
                if not (opts["project"] and opts["network"] and opts["dataset"] and opts["layers"]):
                    raise CommandError(
                        "Give --project, --network, --dataset and --layers (or --job ID to re-run a job)."
                    )
                try:
                    project = project_named(opts["project"])
                except Project.DoesNotExist as exc:
                    raise CommandError(str(exc)) from None
                network = Network.objects.filter(project=project, name=opts["network"]).first()
                dataset = ProbeDataset.objects.filter(project=project, name=opts["dataset"]).first()
                if network is None or dataset is None:
                    raise CommandError(f"Unknown {'network' if network is None else 'dataset'}; "
                                       "see register_network / register_dataset.")
                options = JobSettings(opts["layers"], top_k=opts["top_k"], quantile=opts["quantile"],
                                      iou_rule=opts["iou_rule"], batch_size=opts["batch_size"], shards=opts["shards"],
                                      samples=opts["samples"], sample_seed=opts["sample_seed"],
                                      token_grid=opts["grid"] or "")
                job = job_create(network=network, dataset=dataset, options=options)
            job = job_start(job=job, background=False)
        except DissectionError as exc:
            raise CommandError(str(exc)) from None
        while opts["wait"] and job.status in (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING):
            time.sleep(2)
            job.refresh_from_db()
            self.stdout.write(f"  {job.status} · {job.stage} · {100 * job.progress:.0f}%")
        if job.status == DissectionJob.Status.FAILED:
            raise CommandError(f"Job {job.pk} failed: {job.error_message}")
        self.stdout.write(self.style.SUCCESS(f"Job {job.pk}: {job.status}."))

"""Publish units as HITs: python manage.py publish_hits --job ID [--layers conv3 ...] [--assignments 3 ...]
[--type verify --source iou crowd] [--channel site|mturk|prolific [--live]]"""
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from units.crowd.errors import PublishError
from units.crowd.models import Channel
from units.crowd.publishing import PublishSettings, hit_publish
from units.crowd.verify import hit_publish_verify
from units.dissection.models import DissectionJob


class Command(BaseCommand):
    help = "Turn the units of a job's layers into HITs (units that already have a HIT are skipped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, required=True)
        parser.add_argument("--layers", nargs="*", help="default: every layer of the job")
        parser.add_argument("--assignments", type=int, default=3, help="assignments per HIT")
        parser.add_argument("--reward", default="0.05")
        parser.add_argument("--lifetime", type=int, default=7 * 24 * 3600, help="seconds a HIT can be taken")
        parser.add_argument("--duration", type=int, default=15 * 60, help="seconds per assignment")
        parser.add_argument("--auto-approve", type=int, default=3 * 24 * 3600, help="seconds until auto-approval")
        parser.add_argument("--exemplars", type=int, default=15, help="exemplars shown per HIT")
        parser.add_argument("--sentinels", type=int, default=0, help="low-activation images mixed in per HIT")
        parser.add_argument("--include-dead", action="store_true", help="publish units that never activate too")
        parser.add_argument("--type", choices=["label", "verify"], default="label",
                            help="label: name the concept; verify: judge a proposed label yes/no")
        parser.add_argument("--source", nargs="+", choices=["iou", "crowd"], default=["iou"],
                            help="verify HITs: whose labels to judge (one HIT per unit and source)")
        parser.add_argument("--title", default="", help="the batch's title as annotators see it (default: the "
                                                        "network and layers in words)")
        parser.add_argument("--channel", choices=["site", "mturk", "prolific"], default="site",
                            help="where the workers come from; mturk means the sandbox unless --live is given")
        parser.add_argument("--live", action="store_true", help="mturk: the live marketplace (real money)")

    def handle(self, *args: Any, **opts: Any) -> None:
        job = DissectionJob.objects.filter(pk=opts["job"]).first()
        if job is None:
            raise CommandError(f"No job {opts['job']}.")
        layers = job.layer_set.all()
        if opts["layers"]:
            layers = layers.filter(name__in=opts["layers"])
            missing = sorted(set(opts["layers"]) - set(layers.values_list("name", flat=True)))
            if missing:
                valid = ", ".join(job.layer_set.values_list("name", flat=True)) or "none (has the job finished?)"
                raise CommandError(f"Job {job.pk} has no layer {', '.join(missing)}; its layers: {valid}.")
        settings = PublishSettings(
            assignments_per_hit=opts["assignments"], reward=opts["reward"],
            lifetime_seconds=opts["lifetime"], assignment_duration_seconds=opts["duration"],
            auto_approval_delay_seconds=opts["auto_approve"], exemplars_shown=opts["exemplars"],
            sentinels=opts["sentinels"], skip_dead=not opts["include_dead"], name=opts["title"][:200],
            channel=_channel(opts),
        )
        try:
            if opts["type"] == "verify":
                batch = hit_publish_verify(layers=layers, sources=opts["source"], settings=settings)
            else:
                batch = hit_publish(layers=layers, settings=settings)
        except PublishError as exc:
            raise CommandError(str(exc)) from None
        if batch.pk and batch.is_external:
            self.stdout.write(self.style.WARNING(f"Channel: {batch.get_channel_display()}"))
        self.stdout.write(self.style.SUCCESS(str(batch.report)))


def _channel(opts: dict) -> str:
    if opts["live"] and opts["channel"] != "mturk":
        raise CommandError("--live is for --channel mturk only.")
    if opts["channel"] == "mturk":
        return Channel.MTURK_LIVE if opts["live"] else Channel.MTURK_SANDBOX
    return Channel.PROLIFIC if opts["channel"] == "prolific" else Channel.SITE

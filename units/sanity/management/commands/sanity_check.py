"""`manage.py sanity_check [--source digits|idx:PATH] [--seeds 3] [--quick] [--out DIR]`: run the report now."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from units.sanity.models import SanityReport
from units.sanity.errors import SanityError
from units.sanity.services import report_out_dir, sanity_report_create, sanity_report_run


class Command(BaseCommand):
    help = "Run the Mixture-of-digits sanity check in this process and store its report (shown at /sanity/)."

    def add_arguments(self, parser) -> None:
        from tasks.engine.sanity import add_arguments

        add_arguments(parser)
        parser.add_argument("--out", default=None,
                            help="output folder (default MEDIA_ROOT/sanity/<report id>, served on the report page)")

    def handle(self, *args, **options) -> None:
        import argparse

        from tasks.engine.errors import EngineError
        from tasks.engine.sanity import config_from_args

        try:
            config = config_from_args(argparse.Namespace(**options))
            config.validate()
        except (EngineError, TypeError) as exc:
            raise CommandError(str(exc)) from None
        out = Path(options["out"]).resolve() if options["out"] else None
        try:
            report = sanity_report_create(config=config, out_dir=out)
        except SanityError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"sanity report {report.pk}: writing to {report_out_dir(report)}")
        report = sanity_report_run(report_id=report.pk)
        if report.status != SanityReport.Status.SUCCEEDED:
            raise CommandError(f"sanity report {report.pk} failed: {report.error_message}")
        for line in report.json.get("headline", []):
            self.stdout.write("  " + line)
        self.stdout.write(f"report {report.pk}: {report_out_dir(report) / 'report.html'} "
                          f"({report.json.get('timings', {}).get('total', 0):.0f} s); page /sanity/{report.pk}/")

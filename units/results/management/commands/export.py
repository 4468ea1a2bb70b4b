"""python manage.py export KIND (--job N | --layer NAME --job N | --batch N) [--output FILE]"""
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from units.results.models import ExportJob
from units.results.errors import ResultsError
from units.results.services import export_create, export_run

from ._scope import add_scope_arguments, resolve_scope


class Command(BaseCommand):
    help = ("Export results: units_csv, units_json, tally (per layer), mturk, milan. The file is written under "
            "MEDIA_ROOT/exports with a dated name (also offered on the Exports page); --output copies it.")

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=ExportJob.Kind.values)
        add_scope_arguments(parser)
        parser.add_argument("--output", help="also copy the file here (a file or a folder)")

    def handle(self, *args, **options):
        job, layer, batch = resolve_scope(options)
        try:
            # Run in this process (the command waits anyway); the row still records the export for the pages.
            export = export_create(kind=options["kind"], job=job, layer=layer, batch=batch, background=False)
            export = export_run(export_id=export.pk)
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        path = Path(settings.MEDIA_ROOT) / export.file
        if options.get("output"):
            target = Path(options["output"])
            if target.is_dir():
                target = target / export.filename
            shutil.copyfile(path, target)
            path = target
        self.stdout.write(str(path))

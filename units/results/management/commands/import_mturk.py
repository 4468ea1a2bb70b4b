"""python manage.py import_mturk FILE --job N --layer NAME"""
from django.core.management.base import BaseCommand, CommandError

from units.results.imports import mturk_import
from units.results.services import ResultsError

from ._scope import resolve_layer


class Command(BaseCommand):
    help = "Import a Mechanical Turk results CSV (Input.unit, Answer.word, Answer.category, ...) as annotations."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--job", type=int)
        parser.add_argument("--layer", required=True, help="layer name (with --job) or layer id")

    def handle(self, *args, **options):
        layer = resolve_layer(options["job"], options["layer"])
        try:
            counts = mturk_import(path=options["file"], layer=layer)
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{counts['created']} annotation(s) imported, {counts['skipped']} already known, "
                          f"from {counts['rows']} row(s)")

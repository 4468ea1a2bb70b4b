"""python manage.py import_tally FILE --job N --layer NAME"""
from django.core.management.base import BaseCommand, CommandError

from units.results.imports import tally_import
from units.results.services import ResultsError

from ._scope import resolve_layer


class Command(BaseCommand):
    help = "Set a layer's automatic (IoU) labels from a NetDissect tally.csv."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--job", type=int)
        parser.add_argument("--layer", required=True, help="layer name (with --job) or layer id")

    def handle(self, *args, **options):
        layer = resolve_layer(options["job"], options["layer"])
        try:
            n = tally_import(path=options["file"], layer=layer)
        except ResultsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{n} unit label(s) of {layer.name} set from {options['file']}")

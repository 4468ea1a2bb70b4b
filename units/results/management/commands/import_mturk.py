"""python manage.py import_mturk FILE --job N --layer NAME"""
from units.results.imports import mturk_import

from ._scope import LayerFileImportCommand


class Command(LayerFileImportCommand):
    help = "Import a Mechanical Turk results CSV (Input.unit, Answer.word, Answer.category, ...) as annotations."

    def import_file(self, path: str, layer) -> str:
        counts = mturk_import(path=path, layer=layer)
        return (f"{counts['created']} annotation(s) imported, {counts['skipped']} already known, "
                f"from {counts['rows']} row(s)")

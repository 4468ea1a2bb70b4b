"""python manage.py import_mturk FILE --job N --layer NAME"""
from units.results.imports import mturk_import

from ._scope import LayerFileImportCommand


class Command(LayerFileImportCommand):
    help = "Import a Mechanical Turk results CSV (Input.unit, Answer.word, Answer.category, ...) as annotations."

    def import_file(self, path: str, layer) -> str:
        counts = mturk_import(path=path, layer=layer)
        invalid = ""
        if counts["invalid"]:
            lines = ", ".join(map(str, counts["invalid_lines"][:20])) + (" ..." if counts["invalid"] > 20 else "")
            invalid = f", {counts['invalid']} refused for an invalid Answer.word (line(s) {lines})"
        return (f"{counts['created']} annotation(s) imported, {counts['skipped']} already known{invalid}, "
                f"from {counts['rows']} row(s)")

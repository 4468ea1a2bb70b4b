"""python manage.py import_tally FILE --job N --layer NAME"""
from units.results.imports import tally_import

from ._scope import LayerFileImportCommand


class Command(LayerFileImportCommand):
    help = "Set a layer's automatic (IoU) labels from a NetDissect tally.csv."

    def import_file(self, path: str, layer) -> str:
        return f"{tally_import(path=path, layer=layer)} unit label(s) of {layer.name} set from {path}"

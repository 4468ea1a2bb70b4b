"""The tally.csv format of NetDissect-Lite: column list and reader.

Torch-free so the web process can read and write tallies without loading PyTorch.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .errors import EngineError


def tally_columns(categories: Sequence[str]) -> list[str]:
    cols = ["unit", "category", "label", "score"]
    for cat in categories:
        cols += [f"{cat}-label", f"{cat}-truth", f"{cat}-activation", f"{cat}-intersect", f"{cat}-iou"]
    return cols


_INT_SUFFIXES = ("-truth", "-activation", "-intersect")


def read_tally(path: str | Path) -> list[dict]:
    """Rows of a tally.csv with numbers typed (unit and counts int, score and IoU float)."""
    path = Path(path)
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet copies start with a BOM
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if header[:4] != ["unit", "category", "label", "score"] or (len(header) - 4) % 5:
            raise EngineError(f"{path} is not a tally.csv: its header is {','.join(header)}")
        for raw in reader:
            row: dict = {}
            for key, value in raw.items():
                if key == "unit" or key.endswith(_INT_SUFFIXES):
                    row[key] = int(value)
                elif key == "score" or key.endswith("-iou"):
                    row[key] = float(value)
                else:
                    row[key] = value
            rows.append(row)
    return rows


def tally_categories(rows_or_header: Sequence) -> list[str]:
    """Category names in column order, from a read_tally row or a header list."""
    keys = list(rows_or_header[0].keys()) if rows_or_header and isinstance(rows_or_header[0],
                                                                           dict) else list(rows_or_header)
    return [k[: -len("-label")] for k in keys[4:] if k.endswith("-label")]

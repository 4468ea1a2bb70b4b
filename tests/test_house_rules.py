"""Rules of the house that a reader cannot see from one file: checked over the whole source tree."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("units", "tasks", "annotate_site")


def product_files() -> Iterator[Path]:
    for part in PRODUCT:
        yield from (p for p in (ROOT / part).rglob("*.py") if "migrations" not in p.parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_nothing_of_the_product_imports_the_benchmarks() -> None:
    found = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in product_files() for line, name in imported_modules(path)
             if name.split(".")[0] == "benchmarks"]
    assert found == []

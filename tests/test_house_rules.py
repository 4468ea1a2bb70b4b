"""Rules of the house that a reader cannot see from one file: checked over the whole source tree."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("units", "tasks", "annotate_site")
PUBLIC_UNDERSCORED = {"_meta"}  # Django's model metadata API


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


def private_names_taken(path: Path) -> Iterator[str]:
    """`from m import _name`, and `module._name` on a module or class this file imported: reaching into
    another module's private helpers. Dunder names are protocol, and Django documents `Model._meta` as API."""
    tree = ast.parse(path.read_text(), str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} from {node.module}"
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules):
            continue
        if node.attr.startswith("_") and not node.attr.startswith("__") and node.attr not in PUBLIC_UNDERSCORED:
            yield f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}"


def test_no_module_reaches_for_another_modules_private_names() -> None:
    files = [*product_files(), *(ROOT / "benchmarks").rglob("*.py")]
    found = [hit for path in files for hit in private_names_taken(path)]
    assert found == []

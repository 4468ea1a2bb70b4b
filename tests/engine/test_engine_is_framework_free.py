"""The engine must run where Django and Celery are absent (workers, command line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "tasks" / "engine"


def test_importing_every_engine_module_loads_neither_django_celery_nor_sklearn() -> None:
    modules = sorted(f"tasks.engine.{p.stem}" for p in ENGINE.glob("*.py") if p.stem != "__init__")
    assert "tasks.engine.datasets" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'units', 'annotate_site', "
        "'sklearn'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"engine imports pulled in: {done.stdout.strip()}"


def test_the_engine_package_itself_imports_nothing_heavy() -> None:
    script = "import sys, tasks.engine; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr

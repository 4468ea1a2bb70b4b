"""On the default SQLite setup, simultaneous claims and submits never answer 500."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path, workers: int = 12, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL",
                                                              "DJANGO_SETTINGS_MODULE"}}
    clean.update({"DEBUG": "1", "UNITCROWD_VAR_DIR": str(tmp_path), "THROTTLE_CLAIM": "10000/min",
                  "THROTTLE_SUBMIT": "10000/min", "LOG_LEVEL": "ERROR", **env})
    result = subprocess.run([sys.executable, "-m", "tests.crowd.sqlite_claims", str(workers)], cwd=ROOT, env=clean,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_simultaneous_claims_and_submits_on_sqlite_never_answer_500(tmp_path):
    report = run(tmp_path)
    print(Counter(report["statuses"]))
    assert report["engine"] == "django.db.backends.sqlite3"
    assert report["errors"] == []
    assert set(report["statuses"]) <= {200, 201, 204}, Counter(report["statuses"])
    # Every slot was claimed and answered exactly once, nobody got a slot twice.
    assert report["annotations"] == report["submitted"] == report["slots"]

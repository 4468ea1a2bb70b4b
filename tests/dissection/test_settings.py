"""Settings come from the environment and fail loudly on bad values."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY",
                                                              "DEBUG"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="annotate_site.settings")
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    result = load_settings(DEBUG="0", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_rejects_a_boolean_it_cannot_read(tmp_path):
    result = load_settings(DEBUG="maybe", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_it_rejects_a_database_url_of_an_unsupported_kind(tmp_path):
    result = load_settings(SECRET_KEY="x" * 40, DATABASE_URL="mysql://u:p@h/db", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgres" in result.stderr


def test_it_rejects_a_broker_that_is_not_redis(tmp_path):
    result = load_settings(SECRET_KEY="x" * 40, CELERY_BROKER_URL="amqp://guest@localhost//",
                           UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "CELERY_BROKER_URL must be a redis" in result.stderr


def test_with_nothing_set_it_uses_sqlite_and_runs_tasks_in_process(tmp_path):
    result = load_settings(DEBUG="1", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


@pytest.mark.parametrize("url", ["postgres://u:p@localhost:5432/db", "postgresql://u:p@db/unitcrowd"])
def test_a_postgres_url_selects_postgresql_and_a_broker_turns_off_in_process_tasks(tmp_path, url):
    result = load_settings(SECRET_KEY="x" * 40, DATABASE_URL=url, CELERY_BROKER_URL="redis://localhost:6379/0",
                           UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


@pytest.mark.parametrize("name, value, message", [
    ("UNITCROWD_JOB_STEP_DELAY", "soon", "UNITCROWD_JOB_STEP_DELAY='soon' is not a number"),
    ("UNITCROWD_SENTINELS_PER_UNIT", "-1", "UNITCROWD_SENTINELS_PER_UNIT=-1 must be at least 0"),
    ("CELERY_VISIBILITY_TIMEOUT", "5", "CELERY_VISIBILITY_TIMEOUT=5 must be at least 10"),
    ("UNITCROWD_EAGER_JOBS_IN_THREAD", "perhaps", "UNITCROWD_EAGER_JOBS_IN_THREAD='perhaps' is not a boolean"),
])
def test_it_rejects_bad_values_of_the_job_settings(tmp_path, name, value, message):
    result = load_settings(DEBUG="1", UNITCROWD_VAR_DIR=str(tmp_path), **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python manage.py ...` as a developer types it: no DEBUG, no SECRET_KEY in the environment."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE",
                          "UNITCROWD_ENV_FILE"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def test_the_env_file_make_run_writes_lets_manage_py_commands_run_as_printed(tmp_path):
    subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), ".env"], check=True,
                   capture_output=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    written = (tmp_path / ".env").read_text()
    assert "DEBUG=1" in written and "SECRET_KEY=" in written
    env = {"UNITCROWD_ENV_FILE": str(tmp_path / ".env"), "UNITCROWD_VAR_DIR": str(tmp_path / "var")}
    result = _manage(["check"], env)
    assert result.returncode == 0, result.stderr
    assert "SECRET_KEY must be set" not in result.stderr
    # without the file, the same command stops as before: nothing else lets it through
    assert "SECRET_KEY must be set" in _manage(["check"], {**env, "UNITCROWD_ENV_FILE": ""}).stderr


def test_make_keeps_an_existing_env_file(tmp_path):
    (tmp_path / ".env").write_text("DEBUG=1\nSECRET_KEY=mine\n")
    subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), ".env"], check=True,
                   capture_output=True, timeout=120)
    assert (tmp_path / ".env").read_text() == "DEBUG=1\nSECRET_KEY=mine\n"


def test_the_real_environment_wins_over_the_env_file(tmp_path):
    (tmp_path / ".env").write_text("DEBUG=1\nSECRET_KEY=from-the-file\nTHROTTLE_CLAIM=5/min\n")
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DEBUG, settings.SECRET_KEY, settings.THROTTLE_RATES['claim'])")
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG"}
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "annotate_site.settings", "UNITCROWD_ENV_FILE": str(tmp_path / ".env"),
             "UNITCROWD_VAR_DIR": str(tmp_path), "DEBUG": "0", "SECRET_KEY": "x" * 40})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "x" * 40, "5/min"]


def test_a_named_env_file_that_is_missing_stops_the_process(tmp_path):
    result = load_settings(UNITCROWD_ENV_FILE=str(tmp_path / "nope.env"), UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "UNITCROWD_ENV_FILE" in result.stderr


def _database_options(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DB_PREPARED_STATEMENTS", "DEBUG"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="annotate_site.settings", DEBUG="1")
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(sorted(settings.DATABASES['default'].get('OPTIONS', {}).items()))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_prepared_statements_are_on_for_postgresql_unless_turned_off(tmp_path):
    url = "postgres://u:p@127.0.0.1:5432/db"
    assert "('prepare_threshold', 5)" in _database_options(DATABASE_URL=url, UNITCROWD_VAR_DIR=str(tmp_path))
    assert "prepare_threshold" not in _database_options(DATABASE_URL=url, DB_PREPARED_STATEMENTS="0",
                                                        UNITCROWD_VAR_DIR=str(tmp_path))
    assert "prepare_threshold" not in _database_options(UNITCROWD_VAR_DIR=str(tmp_path))  # SQLite

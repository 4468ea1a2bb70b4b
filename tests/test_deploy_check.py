"""`manage.py check --deploy` is clean with the environment docker-compose.yml gives the site."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management.utils import get_random_secret_key

ROOT = Path(__file__).resolve().parents[1]


def compose_environment(**overrides: str) -> dict[str, str]:
    """The x-django environment of docker-compose.yml, with ${VAR:-default} read as compose reads it
    when .env leaves VAR unset, and the required SECRET_KEY filled with a random key."""
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {}
    for name, value in spec["x-django"]["environment"].items():
        value = str(value)
        value = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), value)
        value = re.sub(r"\$\{SECRET_KEY:\?[^}]*\}", get_random_secret_key() + get_random_secret_key(), value)
        assert "${" not in value, (name, value)
        env[name] = value
    env.update(overrides)
    return env


def run_check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG", "SECRET_KEY",
                                                                      "DATABASE_URL"))}
    # The compose paths (/var/lib/unitcrowd) do not exist here; everything else is compose's.
    env = {**env, "UNITCROWD_VAR_DIR": str(tmp_path), "MEDIA_ROOT": str(tmp_path / "media"),
           "DATASETS_ROOT": str(tmp_path / "datasets"), "DJANGO_SETTINGS_MODULE": "annotate_site.settings"}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_with_the_compose_environment(tmp_path):
    result = run_check(compose_environment(), tmp_path)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_https_is_switched_off(tmp_path):
    result = run_check(compose_environment(HTTPS="0"), tmp_path)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stdout + result.stderr


def test_check_deploy_warns_when_an_outside_crowd_is_set_up_with_the_default_site_url(tmp_path):
    env = compose_environment(MTURK_AWS_ACCESS_KEY_ID="AKIAEXAMPLE", MTURK_AWS_SECRET_ACCESS_KEY="x" * 40)
    env.pop("SITE_URL", None)
    result = run_check(env, tmp_path)
    assert result.returncode != 0
    assert "crowd.W001" in result.stdout + result.stderr
    public = run_check({**env, "SITE_URL": "https://crowd.example.org"}, tmp_path)
    assert "crowd.W001" not in public.stdout + public.stderr, public.stdout + public.stderr

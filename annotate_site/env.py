"""Typed readers for settings taken from the environment; bad values fail loudly at start-up."""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_env_file(default: Path) -> Path | None:
    """Put the variables of an env file (`NAME=value` lines, python-dotenv's format) into the
    environment, under what is already there: a variable set in the real environment wins.

    The file is UNITCROWD_ENV_FILE, else `default` (the project's `.env`, which `make run` writes);
    UNITCROWD_ENV_FILE="" reads none (the test suite). Returns the file read, if any."""
    chosen = os.environ.get("UNITCROWD_ENV_FILE")
    if chosen == "":
        return None
    path = Path(chosen) if chosen else default
    if chosen and not path.is_file():
        raise ImproperlyConfigured(f"UNITCROWD_ENV_FILE={chosen!r} is not a file.")
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


_RATE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


def envrate(name: str, default: str) -> str:
    """A DRF throttle rate such as "30/min": checked here, because DRF would only fail on first use."""
    raw = os.environ.get(name, "").strip() or default
    number, _, period = raw.partition("/")
    if not (number.isdigit() and int(number) > 0 and period in _RATE_PERIODS):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate: write N/s, N/min, N/hour or N/day with N > 0.")
    return raw

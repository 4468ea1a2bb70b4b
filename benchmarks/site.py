"""Django for the benchmarks that drive the site's code: its own settings, loaded as manage.py loads them."""
from __future__ import annotations

import os


def setup_django() -> None:
    """Load the site's settings (DJANGO_SETTINGS_MODULE when set) and its apps; call before importing models."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate_site.settings")
    import django

    django.setup()

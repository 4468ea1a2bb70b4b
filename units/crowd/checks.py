"""`manage.py check --deploy`: outside crowds need a SITE_URL they can reach.

Mechanical Turk frames the HIT page from SITE_URL (over HTTPS only) and every worker of an outside crowd
fetches the pictures from it; with the default local address no worker sees anything.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def site_url_is_local(url: str) -> bool:
    """Whether `url` is the default or another address no outside worker can open over HTTPS."""
    parts = urlsplit(url)
    return url == settings.SITE_URL_DEFAULT or parts.scheme != "https" or (parts.hostname or "") in LOCAL_HOSTS


def outside_channel_configured() -> bool:
    """Credentials in the environment, a project's stored credentials, or a batch on an outside channel."""
    if settings.MTURK_AWS_ACCESS_KEY_ID or settings.PROLIFIC_API_TOKEN:
        return True
    from .models import Channel, ChannelSettings, HitBatch

    try:
        return (ChannelSettings.objects.exclude(mturk_access_key_id="", prolific_token_encrypted="").exists()
                or HitBatch.objects.exclude(channel=Channel.SITE).exists())
    except DatabaseError:  # tables not made yet (before the first migrate): nothing configured there
        return False


@register(Tags.security, deploy=True)
def site_url_for_outside_crowds(app_configs, **kwargs) -> list[Warning]:
    if not site_url_is_local(settings.SITE_URL) or not outside_channel_configured():
        return []
    return [Warning(
        f"SITE_URL is {settings.SITE_URL!r}, but a crowd channel other than the site (Mechanical Turk or "
        f"Prolific) is configured: its workers open the HIT page and the pictures from SITE_URL.",
        hint="Set SITE_URL to the site's public https:// address, e.g. https://crowd.example.org.",
        id="crowd.W001",
    )]

"""API tokens (django-rest-knox: hashed at rest, with an expiry) and when they are revoked.

A token dies when its user's password changes or the user is deactivated (here, on save), when an
annotator is blocked (crowd.accounts calls `tokens_revoke`), and on POST /api/auth/logout/.
Imports no app: every app may use it.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from django.dispatch import receiver
from knox.models import AuthToken


def tokens_revoke(*, user) -> int:
    """Delete every API token of `user`; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


@receiver(pre_save, sender=get_user_model(), dispatch_uid="unitcrowd-revoke-tokens-on-user-change")
def _revoke_on_password_change_or_deactivation(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    # A stolen token must not outlive the password reset its owner makes to shut the thief out.
    if raw or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        tokens_revoke(user=instance)

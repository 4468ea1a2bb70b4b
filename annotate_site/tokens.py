"""API tokens (django-rest-knox: hashed at rest, with an expiry) and when they are revoked.

A token dies when its user's password changes or the user is deactivated (here, on save), when an
annotator is blocked (crowd.annotators calls `tokens_revoke`), and on POST /api/auth/logout/.
Imports no app: every app may use it.
"""
from __future__ import annotations

import binascii
from hmac import compare_digest
from typing import cast

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from .plainsql import Table, cache_related, columns, fetch_all, load_row

_TOKEN, _USER = Table(AuthToken, "t"), Table(get_user_model(), "u")


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token check without its per-request sweep of the user's other tokens.

    knox reads every token of the user on every request to delete the expired ones: one more query
    per API call on the crowd's hot path (claim, submit). Here a request checks only its own token
    (an expired one is deleted and refused, as in knox), and the user's other expired tokens are
    swept when a new token is issued (`tokens_sweep_expired`, called by POST /api/auth/token/).
    """

    def authenticate_credentials(self, token: bytes):
        """knox's check, with its one read in plain SQL (every API call of the crowd's hot path makes it;
        the ORM compiled that join for longer than PostgreSQL ran it, see annotate_site.plainsql): the
        tokens whose key is the token's prefix, with their users; then knox's own steps for each."""
        key = token.decode("utf-8")
        t, u = _TOKEN, _USER
        rows = fetch_all(f"SELECT {columns(t, u)} FROM {t.name} JOIN {u.name} ON u.id = t.user_id"
                         f" WHERE t.token_key = %s", [key[:CONSTANTS.TOKEN_KEY_LENGTH]])
        for row in rows:
            loaded, user = load_row(row, t, u)
            auth_token = cast(AuthToken, loaded)
            cache_related(auth_token, "user", user)
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(_("Invalid token."))

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The API schema describes our subclass as knox's token scheme (`Authorization: Token ...`)."""

    target_class = "annotate_site.tokens.TokenAuthentication"


def tokens_sweep_expired(*, user) -> int:
    """Delete the user's expired API tokens; returns how many."""
    deleted, _ = AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    return deleted


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

"""POST /api/auth/token/ (user name + password -> a knox token with its expiry) and the logouts.

Failed attempts count towards django-axes' lockout like failed logins on the page; the endpoint is
also throttled per address (scope "token"). Blocked annotators get no token.
"""
from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from knox.models import AuthToken
from knox.settings import knox_settings
from knox.views import LogoutAllView, LogoutView
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from .throttling import lockout_response
from .tokens import TokenAuthentication, tokens_sweep_expired


class TokenIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(request=TokenIn, responses={200: inline_serializer("TokenOut", {
        "token": serializers.CharField(), "expiry": serializers.DateTimeField()})})
    def post(self, request: Request) -> HttpResponse:
        data = TokenIn(data=request.data)
        if not data.is_valid():
            return Response(data.errors, status=status.HTTP_400_BAD_REQUEST)
        # The plain HttpRequest, so axes' middleware sees the lockout mark authenticate() leaves on it.
        http_request = request._request
        user = authenticate(http_request, **data.validated_data)
        if getattr(http_request, "axes_locked_out", False):
            return lockout_response(http_request)
        if user is None:
            return Response({"non_field_errors": ["Unable to log in with provided credentials."]},
                            status=status.HTTP_400_BAD_REQUEST)
        profile = getattr(user, "annotator_profile", None)
        if profile is not None and profile.blocked_at is not None:
            return Response({"detail": "This account is blocked."}, status=status.HTTP_403_FORBIDDEN)
        tokens_sweep_expired(user=user)
        instance, token = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        return Response({"token": token, "expiry": instance.expiry})


@extend_schema_view(post=extend_schema(request=None, responses={204: None}))
class TokenLogoutView(LogoutView):
    """Revokes the token the request was made with."""

    authentication_classes = (TokenAuthentication,)


@extend_schema_view(post=extend_schema(request=None, responses={204: None}))
class TokenLogoutAllView(LogoutAllView):
    """Revokes every token of the user."""

    authentication_classes = (TokenAuthentication,)

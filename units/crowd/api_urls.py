"""API routes of the crowd flow (token auth, next assignment, submit, return, skip)."""
from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from .api import NextAssignmentView, ReturnView, SkipView, SubmitView

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("assignments/next/", NextAssignmentView.as_view(), name="api-assignment-next"),
    path("assignments/<int:pk>/submit/", SubmitView.as_view(), name="api-assignment-submit"),
    path("assignments/<int:pk>/return/", ReturnView.as_view(), name="api-assignment-return"),
    path("assignments/<int:pk>/skip/", SkipView.as_view(), name="api-assignment-skip"),
]

"""All API routes, gathered from the apps (each app adds its own module here)."""
from django.urls import include, path

from .api_auth import TokenLogoutAllView, TokenLogoutView, TokenView

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("auth/logout/", TokenLogoutView.as_view(), name="api-logout"),
    path("auth/logoutall/", TokenLogoutAllView.as_view(), name="api-logout-all"),
    path("", include("units.dissection.api.urls")),
    path("", include("units.crowd.api.urls")),
    path("", include("units.results.api.urls")),
]

"""All API routes, gathered from the apps (each app adds its own module here)."""
from django.urls import include, path

urlpatterns = [
    path("", include("units.api.urls")),
    path("", include("units.crowd.api_urls")),
    path("", include("units.results.api_urls")),
]

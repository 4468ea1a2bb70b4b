"""All API routes, gathered from the apps (each app adds its own module here)."""
from django.urls import include, path

urlpatterns = [
    path("", include("units.dissection.api.urls")),
    path("", include("units.crowd.api.urls")),
    path("", include("units.results.api.urls")),
]

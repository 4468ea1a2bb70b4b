"""Pages of the compute side: networks, datasets, jobs, layers, units."""
from django.urls import path  # noqa: F401  (routes added by the platform views)


app_name = "units"
urlpatterns: list = []

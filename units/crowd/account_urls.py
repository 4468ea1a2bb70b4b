"""Sign-in, sign-out, password change (the crowd app adds sign-up)."""
from django.urls import include, path

urlpatterns = [
    path("", include("django.contrib.auth.urls")),
]

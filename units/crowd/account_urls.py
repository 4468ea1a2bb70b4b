"""Sign-in, sign-out, password change from django.contrib.auth, plus the crowd's sign-up."""
from django.urls import include, path

from .views.accounts import signup

urlpatterns = [
    path("signup/", signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]

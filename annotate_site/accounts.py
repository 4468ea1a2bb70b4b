"""Accounts, site-wide: sign-in, sign-out and password pages from django.contrib.auth, plus the annotators'
sign-up (open or by invite code, as a requester chose), which makes a crowd profile."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path

from annotate_site.throttling import lockout_response, signup_failed, signup_locked

from units.crowd.annotators import annotator_signup
from units.crowd.errors import CrowdError, InvalidAnswer
from units.crowd.forms import SignupForm
from units.crowd.models import CrowdSettings


def signup(request: HttpRequest) -> HttpResponse:
    mode = CrowdSettings.load().signup_mode
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST" and signup_locked(request):
        return lockout_response(request)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and mode != CrowdSettings.SignupMode.CLOSED:
        data = form.cleaned_data
        try:
            user = annotator_signup(username=data["username"], password=data["password1"], email=data["email"],
                                    invite_code=data["invite_code"])
        except InvalidAnswer as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        except CrowdError as exc:
            form.add_error(None, str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}! Read the instructions, then take the qualification.")
            return redirect("crowd:home")
    if request.method == "POST":
        signup_failed(request)  # counts towards the lockout (axes); its middleware answers 429 at the limit
    return render(request, "registration/signup.html", {"form": form, "mode": mode, "modes": CrowdSettings.SignupMode})


urlpatterns = [
    path("signup/", signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]

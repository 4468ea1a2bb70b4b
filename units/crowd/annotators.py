"""Annotators: profiles, sign-up (open or by invite code), qualification by hand (per project), blocking, flags."""
from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate_site.tokens import tokens_revoke
from units.projects.models import Project

from .errors import CrowdError, InvalidAnswer
from .models import AnnotatorProfile, Assignment, CrowdSettings, InviteCode, Qualification, QualificationSettings
from .slots import assignments_free


def profile_get(user: User) -> AnnotatorProfile:
    profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
    return profile


def annotator_signup(*, username: str, password: str, email: str = "", invite_code: str = "") -> User:
    """Create an annotator account; in invite mode the code is used up atomically."""
    User = get_user_model()
    crowd = CrowdSettings.load()
    if crowd.signup_mode == CrowdSettings.SignupMode.CLOSED:
        raise CrowdError("Sign-up is closed. Ask a requester for an account.")
    username = username.strip()
    errors: dict[str, list[str]] = {}
    if not username:
        errors["username"] = ["Choose a user name."]
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["This user name is taken; choose another."]
    else:
        # create_user() skips the model's validators; run them so names keep to letters, digits and @.+-_
        try:
            User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
        except ValidationError as exc:
            errors["username"] = list(exc.messages)
    try:
        validate_password(password, User(username=username, email=email))
    except ValidationError as exc:
        errors["password1"] = list(exc.messages)
    if errors:
        raise InvalidAnswer(errors)
    with transaction.atomic():
        code = None
        if crowd.signup_mode == CrowdSettings.SignupMode.INVITE:
            # Lock the code so two sign-ups racing for its last use cannot both succeed.
            code = InviteCode.objects.select_for_update().filter(code=invite_code.strip()).first()
            if code is None or not code.usable:
                raise InvalidAnswer({"invite_code": ["This invite code is not valid or has been used up."]})
            code.uses += 1
            code.save(update_fields=["uses"])
        user = User.objects.create_user(username=username, password=password, email=email)
        AnnotatorProfile.objects.create(user=user, invite_code=code)
    return user


def crowd_settings_update(*, by: User, **values: Any) -> CrowdSettings:
    crowd = CrowdSettings.load()
    allowed = {"signup_mode", "gold_rate"}
    unknown = set(values) - allowed
    if unknown:
        raise CrowdError(f"Unknown crowd settings: {', '.join(sorted(unknown))}.")
    for name, value in values.items():
        setattr(crowd, name, value)
    crowd.save(update_fields=[*values, "updated_at"])
    return crowd


def invite_code_create(*, by: User, max_uses: int = 1, note: str = "") -> InviteCode:
    if max_uses < 1:
        raise CrowdError("An invite code must allow at least one use.")
    return InviteCode.objects.create(code=secrets.token_urlsafe(9), max_uses=max_uses, note=note, created_by=by)


def invite_code_deactivate(*, code: InviteCode) -> None:
    code.active = False
    code.save(update_fields=["active"])


def qualification_settings_update(*, project: Project, by: User, **values: Any) -> QualificationSettings:
    """Change a project's qualification test (size, pass fraction, longest wait after failures)."""
    current = QualificationSettings.of(project)
    allowed = {"size", "pass_fraction", "cooldown_minutes"}
    unknown = set(values) - allowed
    if unknown:
        raise CrowdError(f"Unknown qualification settings: {', '.join(sorted(unknown))}.")
    for name, value in values.items():
        setattr(current, name, value)
    current.save(update_fields=list(values))
    return current


def is_qualified(user: User, project: Project | int) -> bool:
    project_id = project if isinstance(project, int) else project.pk
    return Qualification.objects.filter(user_id=user.pk, project_id=project_id).exists()


def annotator_qualify(*, user: User, project: Project, by: User | None = None) -> Qualification:
    """Qualify for one project (passing its test, a requester's decision, or tests and the demo)."""
    profile_get(user)  # every qualified annotator has a profile (the claim locks it)
    try:
        with transaction.atomic():
            qualification, _ = Qualification.objects.get_or_create(
                user=user, project=project, defaults={"qualified_at": timezone.now(), "qualified_manually_by": by})
    except IntegrityError:  # qualified meanwhile by a concurrent request
        qualification = Qualification.objects.get(user=user, project=project)
    return qualification


def annotator_unqualify(*, user: User, project: Project) -> None:
    """No more of this project's HITs for the user until they qualify again (work they hold is kept)."""
    Qualification.objects.filter(user=user, project=project).delete()


@transaction.atomic
def annotator_block(*, user: User, reason: str = "") -> int:
    """No more HITs for this annotator; their open assignments are freed. Returns how many were freed."""
    profile = AnnotatorProfile.objects.select_for_update().get(pk=profile_get(user).pk)
    profile.blocked_at = timezone.now()
    profile.blocked_reason = reason[:500]
    profile.save(update_fields=["blocked_at", "blocked_reason"])
    tokens_revoke(user=user)  # a blocked annotator's scripts stop at once, not when their tokens expire
    return assignments_free(
        assignments=Assignment.objects.filter(worker=user, status=Assignment.Status.ACCEPTED),
        status=Assignment.Status.ABANDONED,
    )


def annotator_unblock(*, user: User) -> AnnotatorProfile:
    profile = profile_get(user)
    profile.blocked_at = None
    profile.blocked_reason = ""
    profile.save(update_fields=["blocked_at", "blocked_reason"])
    return profile


def annotator_flag(*, user: User, reason: str) -> None:
    profile = profile_get(user)
    profile.flagged_at = timezone.now()
    profile.flag_reason = reason[:500]
    profile.save(update_fields=["flagged_at", "flag_reason"])


def annotator_unflag(*, user: User) -> None:
    profile = profile_get(user)
    profile.flagged_at = None
    profile.flag_reason = ""
    profile.save(update_fields=["flagged_at", "flag_reason"])

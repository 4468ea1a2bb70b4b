"""Writes of projects and members: keyword-only, atomic, refusing with ProjectError."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .errors import ProjectError
from .models import Activity, Invitation, Membership, Pool, Project, Role
from .signals import project_deleting


def activity_record(*, project: Project | int, actor, verb: str, summary: str) -> Activity:
    """One line of the project's activity log (the apps call it from their services, in their transaction)."""
    project_id = project if isinstance(project, int) else project.pk
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return Activity.objects.create(project_id=project_id, actor=actor, verb=verb, summary=summary[:500])


def project_create(*, name: str, created_by, description: str = "") -> Project:
    """A new project whose creator is its first owner."""
    name = (name or "").strip()
    if not name:
        raise ProjectError("A project needs a name.")
    if len(name) > 100:
        raise ProjectError("A project name has at most 100 characters.")
    try:
        with transaction.atomic():
            project = Project.objects.create(name=name, description=description, created_by=created_by)
            Membership.objects.create(project=project, user=created_by, role=Role.OWNER, added_by=created_by)
    except IntegrityError:
        raise ProjectError(f"A project named {name!r} exists already; choose another name.") from None
    return project


def _role(role: str) -> str:
    if role not in Role.values:
        raise ProjectError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    return role


def member_invite(*, project: Project, who: str, role: str, invited_by) -> Membership | Invitation:
    """Add a member by user name or e-mail.

    An existing account (by user name, or by e-mail) becomes a member at once; an e-mail without an
    account gets an Invitation whose link adds its holder once signed in.
    """
    role = _role(role)
    who = (who or "").strip()
    if not who:
        raise ProjectError("Give a user name or an e-mail address.")
    User = get_user_model()
    users = list(User.objects.filter(Q(username=who) | Q(email__iexact=who), is_active=True)[:2])
    with transaction.atomic():
        if len(users) == 1:
            user = users[0]
            if Membership.objects.filter(project=project, user=user).exists():
                raise ProjectError(f"{user.username} is a member already; change their role instead.")
            activity_record(project=project, actor=invited_by, verb=Activity.Verb.MEMBER_ADDED,
                            summary=f"{user.username} as {role}")
            return Membership.objects.create(project=project, user=user, role=role, added_by=invited_by)
        if len(users) > 1:
            raise ProjectError(f"Several accounts match {who!r}; invite by user name.")
        if "@" not in who:
            raise ProjectError(f"No user named {who!r}; invite them by e-mail instead.")
        invitation, created = Invitation.objects.get_or_create(
            project=project, email=who.lower(), accepted_at=None, defaults={"role": role, "invited_by": invited_by})
        if not created:
            raise ProjectError(f"{who} has an open invitation already.")
        activity_record(project=project, actor=invited_by, verb=Activity.Verb.MEMBER_INVITED,
                        summary=f"{who.lower()} as {role}")
        return invitation


def invitation_accept(*, token: str, user) -> Membership:
    """The signed-in holder of an invitation link becomes a member with the invited role."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(token=token, accepted_at=None).first()
        if invitation is None:
            raise ProjectError("This invitation link is not valid (used already, or withdrawn).")
        membership, created = Membership.objects.get_or_create(
            project=invitation.project, user=user, defaults={"role": invitation.role, "added_by": invitation.invited_by}
        )
        invitation.accepted_by, invitation.accepted_at = user, timezone.now()
        invitation.save(update_fields=["accepted_by", "accepted_at"])
        activity_record(project=invitation.project, actor=user, verb=Activity.Verb.MEMBER_JOINED,
                        summary=f"{user.username} as {membership.role} (invited as {invitation.email})")
    return membership


def _locked_membership(project: Project, user) -> Membership:
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise ProjectError(f"{user} is not a member of {project}.")
    return membership


def _refuse_last_owner(project: Project, membership: Membership, doing: str) -> None:
    # Locking every owner row serialises two owners removing each other at the same time.
    owners = list(
        Membership.objects.select_for_update().filter(project=project, role=Role.OWNER).values_list("pk", flat=True)
    )
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise ProjectError(
            f"{membership.user} is the last owner of {project}; make another member owner before {doing}."
        )


def member_role_change(*, project: Project, user, role: str, changed_by) -> Membership:
    role = _role(role)
    with transaction.atomic():
        membership = _locked_membership(project, user)
        if role != Role.OWNER:
            _refuse_last_owner(project, membership, "changing their role")
        membership.role = role
        membership.save(update_fields=["role"])
        activity_record(project=project, actor=changed_by, verb=Activity.Verb.ROLE_CHANGED,
                        summary=f"{user.username} is now {role}")
    return membership


def member_remove(*, project: Project, user, removed_by) -> None:
    """Remove a member; their next request sees nothing of the project (roles are never cached)."""
    with transaction.atomic():
        membership = _locked_membership(project, user)
        _refuse_last_owner(project, membership, "removing them")
        membership.delete()
        activity_record(project=project, actor=removed_by, verb=Activity.Verb.MEMBER_REMOVED, summary=user.username)


def project_delete(*, project: Project, confirm_name: str, deleted_by) -> None:
    """Delete a project, its rows and its files; the caller must type the project's name.

    The apps that own rows of the project listen to `project_deleting` and remove what the
    cascade cannot (protected rows, files under MEDIA_ROOT, after the commit).
    """
    if (confirm_name or "").strip() != project.name:
        raise ProjectError("Type the project's name exactly to delete it.")
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        project_deleting.send(sender=Project, project=project, deleted_by=deleted_by)
        project.delete()


def project_ensure(*, name: str, owner=None) -> Project:
    """The project of this name, made if missing (the demo and the load test's seeding reuse theirs)."""
    with transaction.atomic():
        project, created = Project.objects.get_or_create(name=name, defaults={"created_by": owner})
        if owner is not None:
            Membership.objects.get_or_create(
                project=project, user=owner, defaults={"role": Role.OWNER, "added_by": owner}
            )
    return project


# -- private pools -------------------------------------------------------------------------------


def pool_create(*, project: Project, name: str, created_by) -> Pool:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ProjectError("A pool needs a name of 1 to 100 characters.")
    try:
        with transaction.atomic():
            pool = Pool.objects.create(project=project, name=name)
            activity_record(project=project, actor=created_by, verb=Activity.Verb.POOL_CHANGED,
                            summary=f"pool {name} created")
    except IntegrityError:
        raise ProjectError(f"The project has a pool named {name!r} already.") from None
    return pool


def pool_member_add(*, pool: Pool, who: str, added_by):
    """Add an annotator to the pool by user name or e-mail (an account must exist: else send the pool's link)."""
    who = (who or "").strip()
    User = get_user_model()
    users = list(User.objects.filter(Q(username=who) | Q(email__iexact=who), is_active=True)[:2]) if who else []
    if len(users) != 1:
        raise ProjectError(f"No single account matches {who!r}; send them the pool's invitation link instead.")
    with transaction.atomic():
        pool.members.add(users[0])
        activity_record(project=pool.project_id, actor=added_by, verb=Activity.Verb.POOL_CHANGED,
                        summary=f"{users[0].username} added to pool {pool.name}")
    return users[0]


def pool_member_remove(*, pool: Pool, user, removed_by) -> None:
    """Takes effect on the member's next claim; HITs they hold now stay theirs until handed in or expired."""
    with transaction.atomic():
        pool.members.remove(user)
        activity_record(project=pool.project_id, actor=removed_by, verb=Activity.Verb.POOL_CHANGED,
                        summary=f"{user.username} removed from pool {pool.name}")


def pool_join(*, token: str, user) -> Pool:
    """The signed-in holder of a pool's invitation link joins it (the link stays valid for others)."""
    pool = Pool.objects.filter(token=token).first()
    if pool is None:
        raise ProjectError("This pool link is not valid (renewed or withdrawn).")
    with transaction.atomic():
        pool.members.add(user)
        activity_record(project=pool.project_id, actor=user, verb=Activity.Verb.POOL_CHANGED,
                        summary=f"{user.username} joined pool {pool.name} by its link")
    return pool

"""Projects and who belongs to them.

A project owns networks, datasets, jobs, HIT batches and everything made from them (those rows
carry a `project` foreign key to here); a user sees a project's objects only as one of its
members, with one role each. Site admins see every project.
"""
import secrets

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    """A member's role; each role may do what the roles below it may, and more."""

    OWNER = "owner", "owner"  # members, settings, crowd channels, delete
    REQUESTER = "requester", "requester"  # register, dissect, publish, review, export
    REVIEWER = "reviewer", "reviewer"  # review work, see results
    VIEWER = "viewer", "viewer"  # results and exports only


class Project(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                                   on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership",
                                     through_fields=("project", "user"), related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, related_name="memberships", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="memberships", on_delete=models.CASCADE)
    role = models.CharField(max_length=10, choices=Role.choices)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                                 on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


def new_invitation_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """An invitation by e-mail for someone without an account yet; its link adds them once signed in.

    Invitations by user name (or the e-mail of an existing account) add the member at once and
    leave no row here.
    """

    project = models.ForeignKey(Project, related_name="invitations", on_delete=models.CASCADE)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices)
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                                   on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                                    on_delete=models.SET_NULL)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "email"], condition=models.Q(accepted_at=None),
                                               name="invitation_unique_open_email")]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.project}"


class Activity(models.Model):
    """One line of a project's activity log: who did what, when (shown to its owners)."""

    class Verb(models.TextChoices):
        REGISTERED = "registered", "registered"
        DISSECTED = "dissected", "dissected"
        PUBLISHED = "published", "published"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"
        EXPORTED = "exported", "exported"
        IMPORTED = "imported", "imported"
        MEMBER_ADDED = "member_added", "added a member"
        MEMBER_INVITED = "member_invited", "invited by e-mail"
        MEMBER_JOINED = "member_joined", "joined"
        ROLE_CHANGED = "role_changed", "changed a role"
        MEMBER_REMOVED = "member_removed", "removed a member"
        POOL_CHANGED = "pool_changed", "changed a crowd pool"
        CHANNELS_CHANGED = "channels_changed", "changed the crowd channels"

    project = models.ForeignKey(Project, related_name="activities", on_delete=models.CASCADE)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+",
                              on_delete=models.SET_NULL)
    verb = models.CharField(max_length=20, choices=Verb.choices)
    summary = models.CharField(max_length=500)  # what it was done to, in words ("network resnet-a")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="activity_project_time")]

    def __str__(self) -> str:
        return f"{self.actor} {self.verb} {self.summary}"


def new_pool_token() -> str:
    return secrets.token_urlsafe(24)


class Pool(models.Model):
    """A project's private crowd: named annotators, and whoever signs in through its invitation link.

    A HIT batch published to a pool is offered to its members only; a batch without a pool goes
    to the open crowd (every qualified annotator of the site).
    """

    project = models.ForeignKey(Project, related_name="pools", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="crowd_pools", blank=True)
    # The invitation link's secret: its holder joins the pool once signed in (owners may renew it).
    token = models.CharField(max_length=64, unique=True, default=new_pool_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="pool_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.project})"

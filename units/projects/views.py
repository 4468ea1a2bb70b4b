"""Project pages: the list (and creating one), choosing the current project, members, deletion.

Every view reads the project through the selectors with the user's capability: a project the user
is not a member of answers 404, a member without the needed role 403 (they know it exists).
"""
from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotate_site.paging import page_of
from annotate_site.roles import is_requester

from . import selectors
from .access import MANAGE, VIEW, may, role_of
from .current import current_project, current_project_set
from .errors import ProjectError
from .forms import DeleteForm, InviteForm, ProjectForm, RoleForm
from .models import Pool, Project
from .services import (
    invitation_accept, member_invite, member_remove, member_role_change, pool_create, pool_join, pool_member_add,
    pool_member_remove, project_create, project_delete,
)


def _project(request: HttpRequest, project_id: int, capability: str = VIEW) -> Project:
    try:
        project = selectors.project_for(request.user, project_id)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None
    if not may(request.user, project, capability):
        raise PermissionDenied("Only the project's owners may do this.")
    return project


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST":
        if not is_requester(request.user):
            raise PermissionDenied("Only requesters may create projects.")
        if form.is_valid():
            try:
                project = project_create(name=form.cleaned_data["name"], description=form.cleaned_data["description"],
                                         created_by=request.user)
            except ProjectError as exc:
                form.add_error("name", str(exc))
            else:
                current_project_set(request, project)
                messages.success(request, f"Project {project.name} created; you are its owner.")
                return redirect("projects:detail", project_id=project.pk)
    current = current_project(request)
    return render(request, "projects/list.html", {
        "projects": selectors.projects_for(request.user), "form": form, "current": current,
        "may_create": is_requester(request.user),
    })


@login_required
@require_POST
def project_switch(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    current_project_set(request, project)
    messages.success(request, f"Current project: {project.name}.")
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("projects:list")
    return redirect(target)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    manage = may(request.user, project, MANAGE)
    return render(request, "projects/detail.html", {
        "project": project, "members": selectors.project_members(project), "manage": manage,
        "role": role_of(request.user, project), "invite_form": InviteForm(), "delete_form": DeleteForm(),
        "invitations": selectors.project_open_invitations(project) if manage else [],
        "roles": RoleForm.base_fields["role"].choices,
        "pools": selectors.project_pools(project) if manage else [],
    })


@login_required
@require_POST
def member_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, MANAGE)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a user name or e-mail and a role.")
        return redirect("projects:detail", project_id=project.pk)
    try:
        made = member_invite(project=project, who=form.cleaned_data["who"], role=form.cleaned_data["role"],
                             invited_by=request.user)
    except ProjectError as exc:
        messages.error(request, str(exc))
    else:
        if hasattr(made, "token"):
            link = request.build_absolute_uri(reverse("projects:invitation", args=[made.token]))
            messages.success(request, f"Invitation for {made.email}: send them this link: {link}")
        else:
            messages.success(request, f"{made.user.username} is now {made.role} of {project.name}.")
    return redirect("projects:detail", project_id=project.pk)


def _member_user(project: Project, user_id: int):
    return get_object_or_404(get_user_model(), pk=user_id, memberships__project=project)


@login_required
@require_POST
def member_role(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    project = _project(request, project_id, MANAGE)
    user = _member_user(project, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
    else:
        try:
            member_role_change(project=project, user=user, role=form.cleaned_data["role"], changed_by=request.user)
        except ProjectError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{user.username} is now {form.cleaned_data['role']}.")
    return redirect("projects:detail", project_id=project.pk)


@login_required
@require_POST
def member_delete(request: HttpRequest, project_id: int, user_id: int) -> HttpResponse:
    project = _project(request, project_id, MANAGE)
    user = _member_user(project, user_id)
    try:
        member_remove(project=project, user=user, removed_by=request.user)
    except ProjectError as exc:
        messages.error(request, str(exc))
        return redirect("projects:detail", project_id=project.pk)
    messages.success(request, f"{user.username} no longer belongs to {project.name}.")
    if user == request.user and not may(request.user, project):
        return redirect("projects:list")
    return redirect("projects:detail", project_id=project.pk)


@login_required
def project_remove(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, MANAGE)
    form = DeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_delete(project=project, confirm_name=form.cleaned_data["confirm_name"], deleted_by=request.user)
        except ProjectError as exc:
            form.add_error("confirm_name", str(exc))
        else:
            messages.success(request, f"Project {project.name} and its files were deleted.")
            return redirect("projects:list")
    return render(request, "projects/delete.html", {"project": project, "form": form})


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def project_activity(request: HttpRequest, project_id: int) -> HttpResponse:
    """The activity log (owners only); `?format=csv` downloads all of it."""
    project = _project(request, project_id, MANAGE)
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse((writer.writerow(row) for row in selectors.activity_csv_rows(project)),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="activity-project-{project.pk}.csv"'
        return response
    page = page_of(request, selectors.project_activity(project))
    return render(request, "projects/activity.html", {"project": project, "lines": page.object_list, "page": page})


@login_required
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        try:
            membership = invitation_accept(token=token, user=request.user)
        except ProjectError as exc:
            messages.error(request, str(exc))
            return redirect("projects:list")
        current_project_set(request, membership.project)
        messages.success(request, f"You joined {membership.project.name} as {membership.role}.")
        return redirect("projects:detail", project_id=membership.project_id)
    found = selectors.invitation_open(token)
    if found is None:
        raise Http404("This invitation link is not valid (used already, or withdrawn).")
    return render(request, "projects/invitation.html", {"invitation": found})


# -- private pools (owners: the project's crowd channels) ----------------------------------------------


@login_required
@require_POST
def pool_new(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id, MANAGE)
    try:
        pool = pool_create(project=project, name=request.POST.get("name", ""), created_by=request.user)
    except ProjectError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Pool {pool.name} created.")
    return redirect("projects:detail", project_id=project.pk)


def _pool(request: HttpRequest, project: Project, pool_id: int) -> Pool:
    return get_object_or_404(Pool, pk=pool_id, project=project)


@login_required
@require_POST
def pool_member(request: HttpRequest, project_id: int, pool_id: int) -> HttpResponse:
    """Add (`who`) or remove (`remove`: a user id) a pool member."""
    project = _project(request, project_id, MANAGE)
    pool = _pool(request, project, pool_id)
    try:
        if request.POST.get("remove", "").isdigit():
            user = get_object_or_404(pool.members, pk=int(request.POST["remove"]))
            pool_member_remove(pool=pool, user=user, removed_by=request.user)
            messages.success(request, f"{user.username} left pool {pool.name}.")
        else:
            user = pool_member_add(pool=pool, who=request.POST.get("who", ""), added_by=request.user)
            messages.success(request, f"{user.username} joined pool {pool.name}.")
    except ProjectError as exc:
        messages.error(request, str(exc))
    return redirect("projects:detail", project_id=project.pk)


@login_required
def pool_link(request: HttpRequest, token: str) -> HttpResponse:
    """A pool's invitation link: the signed-in annotator joins it (after signing up, if need be)."""
    pool = Pool.objects.select_related("project").filter(token=token).first()
    if pool is None:
        raise Http404("This pool link is not valid (renewed or withdrawn).")
    if request.method == "POST":
        pool_join(token=token, user=request.user)
        messages.success(request, f"You are in the crowd of {pool.project.name} ({pool.name}): its HITs come your way.")
        return redirect("crowd:home")
    return render(request, "projects/pool_join.html", {"pool": pool})

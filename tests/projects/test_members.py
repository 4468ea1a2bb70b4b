"""Projects and their members: creating, inviting, roles, the last owner, removal, deletion."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_job, make_project, make_user
from units.dissection.models import DissectionJob, Network
from units.projects.errors import ProjectError
from units.projects.models import Invitation, Membership, Project
from units.projects.services import (
    invitation_accept,
    member_invite,
    member_remove,
    member_role_change,
    project_create,
    project_delete,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("olga", requester=True)


@pytest.fixture
def project(owner):
    return project_create(name="Vision lab", created_by=owner)


def test_the_creator_of_a_project_is_its_owner_and_names_are_unique(owner, project):
    assert Membership.objects.get(project=project, user=owner).role == "owner"
    with pytest.raises(ProjectError, match="exists already"):
        project_create(name="Vision lab", created_by=owner)


def test_an_invitation_by_user_name_or_email_of_an_account_adds_the_member_at_once(owner, project):
    bob, carol = make_user("bob"), make_user("carol")
    assert member_invite(project=project, who="bob", role="viewer", invited_by=owner).role == "viewer"
    assert member_invite(project=project, who="CAROL@example.org", role="reviewer", invited_by=owner).user == carol
    with pytest.raises(ProjectError, match="member already"):
        member_invite(project=project, who="bob", role="requester", invited_by=owner)
    assert set(project.members.all()) == {owner, bob, carol}


def test_an_invitation_by_email_without_an_account_waits_for_its_link(owner, project):
    invitation = member_invite(project=project, who="new@example.org", role="requester", invited_by=owner)
    assert isinstance(invitation, Invitation)
    newcomer = make_user("newcomer")
    assert invitation_accept(token=invitation.token, user=newcomer).role == "requester"
    with pytest.raises(ProjectError, match="not valid"):
        invitation_accept(token=invitation.token, user=make_user())


def test_unknown_names_and_roles_are_refused_with_a_message(owner, project):
    with pytest.raises(ProjectError, match="No user named"):
        member_invite(project=project, who="nobody", role="viewer", invited_by=owner)
    with pytest.raises(ProjectError, match="Unknown role"):
        member_invite(project=project, who="olga", role="boss", invited_by=owner)


def test_the_last_owner_can_be_neither_removed_nor_demoted(owner, project):
    with pytest.raises(ProjectError, match="last owner"):
        member_remove(project=project, user=owner, removed_by=owner)
    with pytest.raises(ProjectError, match="last owner"):
        member_role_change(project=project, user=owner, role="viewer", changed_by=owner)
    second = make_user("second")
    member_invite(project=project, who="second", role="owner", invited_by=owner)
    member_remove(project=project, user=owner, removed_by=second)
    assert list(project.members.all()) == [second]


def test_the_member_page_refuses_the_last_owners_removal_with_a_clear_message(client, owner, project):
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(reverse("projects:member_remove", args=[project.pk, owner.pk]), follow=True)
    assert "last owner" in response.content.decode()
    assert Membership.objects.filter(project=project, user=owner).exists()


def test_a_removed_member_loses_the_project_on_their_next_request(client, owner, project):
    viewer = make_user("vera")
    member_invite(project=project, who="vera", role="viewer", invited_by=owner)
    client.login(username=viewer.username, password=PASSWORD)
    assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 200
    member_remove(project=project, user=viewer, removed_by=owner)
    assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 404


def test_only_owners_manage_members_and_outsiders_see_404(client, owner, project):
    viewer, outsider = make_user("vera"), make_user("otto", requester=True)
    member_invite(project=project, who="vera", role="viewer", invited_by=owner)
    client.login(username=viewer.username, password=PASSWORD)
    assert client.post(reverse("projects:member_add", args=[project.pk]),
                       {"who": "otto", "role": "owner"}).status_code == 403
    client.login(username=outsider.username, password=PASSWORD)
    for url in (reverse("projects:detail", args=[project.pk]), reverse("projects:delete", args=[project.pk])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("projects:member_add", args=[project.pk]),
                       {"who": "otto", "role": "owner"}).status_code == 404
    assert list(project.members.all()) != [] and outsider not in project.members.all()


def test_deleting_a_project_needs_its_name_and_removes_its_rows_and_files(owner, project, media_root,
                                                                          django_capture_on_commit_callbacks):
    job = make_job(project=project, write_pictures=True)
    job.output_dir = f"jobs/{job.pk}"
    job.save(update_fields=["output_dir"])
    folder = Path(media_root) / job.output_dir
    assert any(folder.rglob("*.png"))
    other = make_job()  # another project's job and files stay
    with pytest.raises(ProjectError, match="name"):
        project_delete(project=project, confirm_name="vision lab", deleted_by=owner)
    assert Project.objects.filter(pk=project.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=project, confirm_name="Vision lab", deleted_by=owner)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not DissectionJob.objects.filter(pk=job.pk).exists()
    assert not Network.objects.filter(project_id=project.pk).exists()
    assert not folder.exists()
    assert DissectionJob.objects.filter(pk=other.pk).exists()


def test_the_delete_page_asks_for_the_name(client, owner, project):
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("projects:delete", args=[project.pk])
    assert "Type the project" in client.get(url).content.decode()
    assert client.post(url, {"confirm_name": "nope"}).status_code == 200
    assert client.post(url, {"confirm_name": "Vision lab"}).status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()


def test_a_project_made_by_factories_takes_members(owner):
    reviewer = make_user("rev")
    project = make_project("p", owner=owner, members={reviewer: "reviewer"})
    assert dict(project.memberships.values_list("user__username", "role")) == {"olga": "owner", "rev": "reviewer"}

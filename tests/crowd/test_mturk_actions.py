"""What the pages send to Mechanical Turk (through the tasks, after commit), with MTurk replaced by a client
under botocore's Stubber: the review's decisions, blocks and bonuses from the annotators page, expiring a
batch, and the balance on the channel page."""
from __future__ import annotations

from datetime import datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, make_hits, make_job, make_project, make_user
from units.crowd.channels import channel_settings_update
from units.crowd.models import Assignment, BonusPayment, Channel, Hit, HitBatch
from units.crowd.mturk import ENDPOINTS, request_token
from units.crowd.review import assignments_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def mturk(monkeypatch):
    """The client every task gets: a Stubber'd one, checked against MTurk's model."""
    client = boto3.client("mturk", region_name="us-east-1", endpoint_url=ENDPOINTS[Channel.MTURK_SANDBOX],
                          aws_access_key_id="AKIATEST", aws_secret_access_key="not-a-secret")
    calls = []

    def fake_client(project_id, channel):
        calls.append((project_id, channel))
        return client

    monkeypatch.setattr("units.crowd.mturk.mturk_client", fake_client)
    with Stubber(client) as stub:
        stub.calls = calls
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def lab(settings):
    settings.SITE_URL = "https://crowd.example.org"
    owner = make_user("olga", requester=True)
    project = make_project("Lab A", owner=owner)
    channel_settings_update(project=project, by=owner, mturk_access_key_id="AKIATEST", mturk_secret="s")
    job = make_job(project=project, layers={"conv3": 1}, exemplars_per_unit=2)
    hit = make_hits(job, assignments=3)[0]
    HitBatch.objects.filter(pk=hit.batch_id).update(channel=Channel.MTURK_SANDBOX)
    Hit.objects.filter(pk=hit.pk).update(external_id="MTHIT0")
    worker = make_user("mturk-W1")
    now = timezone.now()
    assignment = Assignment.objects.create(hit=hit, worker=worker, status=Assignment.Status.SUBMITTED,
                                           accepted_at=now, deadline=now + timedelta(minutes=5), submitted_at=now,
                                           external_id="ASG1")
    return owner, project, hit, worker, assignment


def test_a_rejection_on_the_review_page_reaches_mturk_with_its_feedback(mturk, lab,
                                                                       django_capture_on_commit_callbacks):
    owner, project, _, _, assignment = lab
    mturk.add_response("get_assignment", {"Assignment": {"AssignmentId": "ASG1", "AssignmentStatus": "Submitted"}},
                       {"AssignmentId": "ASG1"})
    mturk.add_response("reject_assignment", {}, {"AssignmentId": "ASG1", "RequesterFeedback": "Checks missed."})
    with django_capture_on_commit_callbacks(execute=True):
        assignments_review(assignment_ids=[assignment.pk], approve=False, feedback="Checks missed.", reviewer=owner)
    assert Assignment.objects.get(pk=assignment.pk).external_status == "Rejected"
    assert mturk.calls == [(project.pk, Channel.MTURK_SANDBOX)]


def test_a_site_assignment_is_never_sent_to_mturk(mturk, lab, django_capture_on_commit_callbacks):
    owner, _, _, _, _ = lab
    job = make_job(project=lab[1], layers={"conv4": 1}, exemplars_per_unit=2)
    site_hit = make_hits(job)[0]
    now = timezone.now()
    site = Assignment.objects.create(hit=site_hit, worker=make_user("ann"), status=Assignment.Status.SUBMITTED,
                                     accepted_at=now, deadline=now + timedelta(minutes=5), submitted_at=now)
    with django_capture_on_commit_callbacks(execute=True):
        assignments_review(assignment_ids=[site.pk], approve=True, reviewer=owner)
    assert mturk.calls == []


def test_blocking_an_mturk_worker_on_the_annotators_page_blocks_them_on_mturk(client, mturk, lab,
                                                                              django_capture_on_commit_callbacks):
    owner, _, _, worker, _ = lab
    mturk.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "Failed most checks"})
    client.login(username=owner.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("crowd:annotator_action", args=[worker.pk]),
                               {"action": "block", "reason": "Failed most checks"})
    assert response.status_code == 302
    worker.annotator_profile.refresh_from_db()
    assert worker.annotator_profile.is_blocked


def test_a_requester_of_another_project_cannot_block_on_this_projects_mturk_account(client, mturk, lab,
                                                                                    django_capture_on_commit_callbacks):
    _, _, _, worker, _ = lab
    stranger = make_user("sam", requester=True)
    make_project("Lab B", owner=stranger)
    client.login(username=stranger.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("crowd:annotator_action", args=[worker.pk]), {"action": "block", "reason": "x"})
    assert mturk.calls == []  # the site-wide block happens; no MTurk call on an account not theirs


def test_a_bonus_from_the_annotators_page_is_paid_once_on_the_latest_approved_assignment(
        client, mturk, lab, django_capture_on_commit_callbacks):
    owner, _, _, worker, assignment = lab
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("crowd:annotator_action", args=[worker.pk])
    response = client.post(url, {"action": "bonus", "amount": "0.50", "reason": "Great work"}, follow=True)
    assert "no approved outside-crowd assignment" in response.content.decode()  # still only submitted
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.APPROVED)
    mturk.add_response("send_bonus", {}, {"WorkerId": "W1", "BonusAmount": "0.50", "AssignmentId": "ASG1",
                                          "Reason": "Great work",
                                          "UniqueRequestToken": request_token("bonus", assignment.pk)})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "bonus", "amount": "0.50", "reason": "Great work"})
    assert BonusPayment.objects.get(assignment=assignment).paid_at is not None
    # A second bonus on the same assignment is refused here, before MTurk is asked (no response is queued).
    again = client.post(url, {"action": "bonus", "amount": "0.50", "reason": "Great work"}, follow=True)
    assert "already has a bonus" in again.content.decode()


def test_expiring_a_batch_closes_its_hits_here_and_on_mturk(client, mturk, lab, django_capture_on_commit_callbacks):
    owner, project, hit, _, _ = lab
    mturk.add_response("update_expiration_for_hit", {}, {"HITId": "MTHIT0", "ExpireAt": datetime(2015, 1, 1)})
    client.login(username=owner.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("crowd:batch_expire", args=[hit.batch_id]))
    assert response.status_code == 302
    assert Hit.objects.get(pk=hit.pk).expires_at <= timezone.now()


def test_the_channel_page_shows_the_balance_when_asked(client, mturk, lab):
    owner, project, _, _, _ = lab
    mturk.add_response("get_account_balance", {"AvailableBalance": "10000.00"}, {})
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("crowd:channels", args=[project.pk]) + "?balance=mturk_sandbox").content.decode()
    assert "Account balance: $10000.00 on Mechanical Turk SANDBOX" in page




def test_publishing_to_mturk_creates_the_hits_there_after_commit(mturk, lab, django_capture_on_commit_callbacks):
    from units.crowd.publishing import PublishSettings, hit_publish

    owner, project, _, _, _ = lab
    job = make_job(project=project, layers={"conv4": 2}, exemplars_per_unit=2)
    mturk.add_response("create_hit_type", {"HITTypeId": "TYPE9"}, None)
    for i in range(2):
        mturk.add_response("create_hit_with_hit_type", {"HIT": {"HITId": f"NEW{i}"}}, None)
    with django_capture_on_commit_callbacks(execute=True):
        batch = hit_publish(layers=job.layer_set.all(), created_by=owner,
                            settings=PublishSettings(channel=Channel.MTURK_SANDBOX))
    assert sorted(batch.hits.values_list("external_id", flat=True)) == ["NEW0", "NEW1"]
    assert HitBatch.objects.get(pk=batch.pk).external_id == "TYPE9"


def test_the_periodic_sync_reads_every_open_mturk_batch(mturk, lab):
    from units.crowd.mturk import mturk_sync_open_batches

    _, _, _, _, assignment = lab
    mturk.add_response("list_assignments_for_hit", {"Assignments": [
        {"AssignmentId": "ASG1", "WorkerId": "W1", "HITId": "MTHIT0", "AssignmentStatus": "Submitted"}]},
        {"HITId": "MTHIT0", "MaxResults": 100, "AssignmentStatuses": ["Submitted", "Approved", "Rejected"]})
    summary = mturk_sync_open_batches()
    assert "1 MTurk assignment(s) matched, 0 without a stored answer" in summary
    assert Assignment.objects.get(pk=assignment.pk).external_status == "Submitted"

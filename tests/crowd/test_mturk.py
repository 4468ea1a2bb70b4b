"""Mechanical Turk calls, checked by botocore's Stubber against the real MTurk API model: a wrong parameter
name or type, or a response shape MTurk cannot send, fails the test. Every operation we call is tried with
every error MTurk's model lists, and the review is tried against every assignment status the model lists.

Operations covered: CreateHITType, CreateHITWithHITType, ListHITs, ListAssignmentsForHIT, GetAssignment,
ApproveAssignment, RejectAssignment, SendBonus, CreateWorkerBlock, UpdateExpirationForHIT, GetAccountBalance,
CreateQualificationType, ListQualificationTypes, AssociateQualificationWithWorker.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from botocore.stub import ANY, Stubber
from django.utils import timezone

from tests.factories import make_hits, make_job, make_user
from units.crowd.annotators import profile_get
from units.crowd.channels import channel_settings_update
from units.crowd.errors import Conflict, CrowdError
from units.crowd.external_work import outside_answer_check
from units.crowd.models import Annotation, Assignment, Channel, ChannelSettings, Hit, HitBatch
from units.crowd.mturk import (
    APPROVED, ENDPOINTS, REJECTED, SUBMITTED, MTurkError, account_balance, assignment_confirm_mturk,
    batch_expire_mturk, batch_publish_mturk, batch_sync_mturk, external_question, hit_page_url, mturk_call,
    mturk_push_review, mturk_push_reviews, qualification_type_name, request_token, requester_annotation,
    review_action, worker_block, worker_bonus, worker_qualify,
)
from units.crowd.quality import worker_checks
from units.results.selectors import counted_annotation_rows

pytestmark = pytest.mark.django_db

OPERATIONS = {  # every operation units/crowd/mturk.py calls, with valid parameters
    "create_hit_type": {"Title": "t", "Description": "d", "Reward": "0.05", "AssignmentDurationInSeconds": 60},
    "create_hit_with_hit_type": {"HITTypeId": "T", "LifetimeInSeconds": 60},
    "list_hits": {},
    "list_assignments_for_hit": {"HITId": "H"},
    "get_assignment": {"AssignmentId": "A"},
    "approve_assignment": {"AssignmentId": "A"},
    "reject_assignment": {"AssignmentId": "A", "RequesterFeedback": "f"},
    "send_bonus": {"WorkerId": "W", "BonusAmount": "1.00", "AssignmentId": "A", "Reason": "r"},
    "create_worker_block": {"WorkerId": "W", "Reason": "r"},
    "update_expiration_for_hit": {"HITId": "H", "ExpireAt": datetime(2015, 1, 1)},
    "get_account_balance": {},
    "create_qualification_type": {"Name": "n", "Description": "d", "QualificationTypeStatus": "Active"},
    "list_qualification_types": {"MustBeRequestable": False},
    "associate_qualification_with_worker": {"QualificationTypeId": "Q", "WorkerId": "W"},
}


@pytest.fixture
def client():
    return boto3.client("mturk", region_name="us-east-1", endpoint_url=ENDPOINTS[Channel.MTURK_SANDBOX],
                        aws_access_key_id="AKIATEST", aws_secret_access_key="not-a-secret")


@pytest.fixture
def stub(client):
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def batch(settings):
    settings.SITE_URL = "https://crowd.example.org"
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    hits = make_hits(job, assignments=3)
    HitBatch.objects.filter(pk=hits[0].batch_id).update(channel=Channel.MTURK_SANDBOX, reward=Decimal("0.10"))
    return HitBatch.objects.get(pk=hits[0].batch_id)


def _hit_params(hit: Hit) -> dict:
    return {"HITTypeId": "TYPE1", "MaxAssignments": 3, "LifetimeInSeconds": ANY,
            "Question": external_question(hit_page_url(hit)), "RequesterAnnotation": requester_annotation(hit),
            "UniqueRequestToken": request_token("hit", hit.pk)}


def test_publishing_creates_one_hit_type_and_one_external_question_hit_per_hit(client, stub, batch):
    hits = list(batch.hits.order_by("pk"))
    stub.add_response("create_hit_type", {"HITTypeId": "TYPE1"}, {
        "Title": ANY, "Description": ANY, "Keywords": ANY, "Reward": "0.10", "AssignmentDurationInSeconds": 900,
        "AutoApprovalDelayInSeconds": batch.auto_approval_delay_seconds})
    for i, hit in enumerate(hits):
        stub.add_response("create_hit_with_hit_type", {"HIT": {"HITId": f"MTHIT{i}", "HITTypeId": "TYPE1"}},
                          _hit_params(hit))
    report = batch_publish_mturk(batch, client=client)
    assert (report.created, report.already) == (2, 0)
    assert list(batch.hits.order_by("pk").values_list("external_id", flat=True)) == ["MTHIT0", "MTHIT1"]
    batch.refresh_from_db()
    assert batch.external_id == "TYPE1"
    # Run again: nothing left to create, so no call at all (the Stubber fails on any unexpected call).
    assert batch_publish_mturk(batch, client=client).already == 2
    question = _hit_params(hits[0])["Question"]
    assert f"<ExternalURL>https://crowd.example.org/crowd/mturk/hits/{hits[0].pk}/</ExternalURL>" in question


def test_a_live_batch_asks_mturks_approval_record_of_its_workers(client, stub, batch):
    HitBatch.objects.filter(pk=batch.pk).update(channel=Channel.MTURK_LIVE)
    batch.refresh_from_db()
    Hit.objects.filter(batch=batch).update(external_id="ALREADY")
    stub.add_response("create_hit_type", {"HITTypeId": "LIVE1"}, {
        "Title": ANY, "Description": ANY, "Keywords": ANY, "Reward": "0.10", "AssignmentDurationInSeconds": 900,
        "AutoApprovalDelayInSeconds": batch.auto_approval_delay_seconds,
        "QualificationRequirements": [
            {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo",
             "IntegerValues": [95], "ActionsGuarded": "PreviewAndAccept"},
            {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo",
             "IntegerValues": [100], "ActionsGuarded": "PreviewAndAccept"}]})
    assert batch_publish_mturk(batch, client=client).already == 2


def test_a_retry_after_a_lost_answer_finds_the_hit_instead_of_creating_a_second(client, stub, batch):
    hits = list(batch.hits.order_by("pk"))
    batch.external_id = "TYPE1"
    HitBatch.objects.filter(pk=batch.pk).update(external_id="TYPE1")
    Hit.objects.filter(pk=hits[1].pk).update(external_id="MTHIT1")
    stub.add_client_error("create_hit_with_hit_type", service_error_code="RequestError",
                          service_message="The value of UniqueRequestToken has already been used.",
                          expected_params=_hit_params(hits[0]))
    stub.add_response("list_hits", {"HITs": [{"HITId": "OTHER", "RequesterAnnotation": "someone else's"}],
                                    "NextToken": "page2"}, {"MaxResults": 100})
    found = {"HITId": "MTHIT0", "RequesterAnnotation": requester_annotation(hits[0])}
    stub.add_response("list_hits", {"HITs": [found]}, {"MaxResults": 100, "NextToken": "page2"})
    report = batch_publish_mturk(batch, client=client)
    assert (report.created, report.recovered, report.already) == (0, 1, 1)
    assert Hit.objects.get(pk=hits[0].pk).external_id == "MTHIT0"


def test_the_same_request_gets_the_same_token_and_another_site_another(settings):
    first = request_token("hit", 7)
    assert first == request_token("hit", 7) and len(first) <= 64
    assert first != request_token("hit", 8) and first != request_token("bonus", 7)
    settings.SITE_URL = "https://other.example.org"
    assert first != request_token("hit", 7)


def test_an_external_question_needs_https():
    with pytest.raises(CrowdError, match="https"):
        external_question("http://127.0.0.1:8000/crowd/mturk/hits/1/")
    assert "&amp;" in external_question("https://x.example.org/?a=1&b=2")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_error_mturk_can_answer_becomes_a_clean_mturk_error(client, stub, operation):
    errors = [shape.name for shape in client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping[operation]).error_shapes]
    assert errors  # the model lists them: ServiceFault and RequestError
    for code in errors:
        stub.add_client_error(operation, service_error_code=code, service_message=f"{code} says no",
                              expected_params=OPERATIONS[operation])
        with pytest.raises(MTurkError, match=f"refused .*{code}.*{code} says no"):
            mturk_call(client, operation, **OPERATIONS[operation])


def _submitted(batch, worker_name="mturk-W1", external_id="ASG1", *, status=Assignment.Status.PENDING,
               sentinels_missed=0):
    """An answer stored from the HIT page: pending until MTurk confirms it."""
    hit = batch.hits.order_by("pk").first()
    Hit.objects.filter(pk=hit.pk).update(external_id="MTHIT0")
    now = timezone.now()
    assignment = Assignment.objects.create(hit=hit, worker=make_user(worker_name), status=status, accepted_at=now,
                                           deadline=now + timedelta(minutes=15), submitted_at=now,
                                           external_id=external_id)
    Annotation.objects.create(assignment=assignment, word="dog", category="object", sentinels_shown=1,
                              sentinels_missed=sentinels_missed)
    return Assignment.objects.select_related("hit__batch", "worker").get(pk=assignment.pk)


def test_sync_reads_every_page_and_matches_only_the_same_worker(client, stub, batch):
    mine = _submitted(batch)
    forged = _submitted(batch, worker_name="mturk-FORGER", external_id="ASG2")
    page = {"HITId": "MTHIT0", "MaxResults": 100, "AssignmentStatuses": [SUBMITTED, APPROVED, REJECTED]}
    stub.add_response("list_assignments_for_hit", {
        "Assignments": [{"AssignmentId": "ASG1", "WorkerId": "W1", "HITId": "MTHIT0", "AssignmentStatus": SUBMITTED}],
        "NextToken": "next", "NumResults": 1}, page)
    # The forger claimed MTurk's assignment ASG2, which MTurk lists under another worker.
    stub.add_response("list_assignments_for_hit", {
        "Assignments": [{"AssignmentId": "ASG2", "WorkerId": "W2", "HITId": "MTHIT0", "AssignmentStatus": SUBMITTED}],
        "NumResults": 1}, {**page, "NextToken": "next"})
    report = batch_sync_mturk(batch, client=client)
    assert (report.matched, report.unmatched, report.unlisted) == (1, 1, 0)
    mine.refresh_from_db()
    assert (mine.status, mine.external_status) == (Assignment.Status.SUBMITTED, SUBMITTED)  # confirmed: counts
    assert Assignment.objects.get(pk=forged.pk).external_status == ""
    assert Assignment.objects.get(pk=forged.pk).status == Assignment.Status.PENDING  # too early to tell


def test_an_answer_mturk_never_lists_is_void_once_its_time_is_up(client, stub, batch):
    forged = _submitted(batch, worker_name="mturk-FORGER", external_id="ASG9")
    Assignment.objects.filter(pk=forged.pk).update(submitted_at=timezone.now() - timedelta(minutes=16))
    fresh = _submitted(batch, worker_name="mturk-SLOW", external_id="ASG8")
    page = {"HITId": "MTHIT0", "MaxResults": 100, "AssignmentStatuses": [SUBMITTED, APPROVED, REJECTED]}
    stub.add_response("list_assignments_for_hit", {"Assignments": [], "NumResults": 0}, page)
    assert batch_sync_mturk(batch, client=client).unlisted == 1  # 16 minutes > the HIT's 15
    forged.refresh_from_db()
    assert (forged.status, forged.external_status) == (Assignment.Status.REJECTED, Assignment.VOID)
    assert Assignment.objects.get(pk=fresh.pk).status == Assignment.Status.PENDING


def test_review_has_an_answer_for_every_status_mturk_can_report(client):
    statuses = client.meta.service_model.shape_for("AssignmentStatus").enum
    assert set(statuses) == {SUBMITTED, APPROVED, REJECTED}
    for status in statuses:
        for want in (APPROVED, REJECTED):
            assert review_action(status, want) in {"approve", "reject", "none", "refuse"}
    with pytest.raises(MTurkError, match="unknown assignment status"):
        review_action("Abandoned", APPROVED)


def _decided(batch, status: str, feedback: str = ""):
    assignment = _submitted(batch)
    Assignment.objects.filter(pk=assignment.pk).update(status=status, feedback=feedback)
    return Assignment.objects.select_related("hit__batch", "worker").get(pk=assignment.pk)


def _get(stub, status):
    stub.add_response("get_assignment", {"Assignment": {"AssignmentId": "ASG1", "AssignmentStatus": status}},
                      {"AssignmentId": "ASG1"})


def test_approving_twice_calls_approve_once(client, stub, batch):
    assignment = _decided(batch, Assignment.Status.APPROVED)
    _get(stub, SUBMITTED)
    stub.add_response("approve_assignment", {}, {"AssignmentId": "ASG1", "RequesterFeedback": "Thank you."})
    assert mturk_push_review(assignment, client=client) == APPROVED
    _get(stub, APPROVED)  # the double click: MTurk already has it, nothing is sent
    assert mturk_push_review(assignment, client=client) == APPROVED
    assert Assignment.objects.get(pk=assignment.pk).external_status == APPROVED


def test_a_rejection_carries_its_feedback_and_is_refused_once_mturk_approved(client, stub, batch):
    assignment = _decided(batch, Assignment.Status.REJECTED, feedback="Most checks were not ticked.")
    _get(stub, SUBMITTED)
    stub.add_response("reject_assignment", {}, {"AssignmentId": "ASG1",
                                                "RequesterFeedback": "Most checks were not ticked."})
    assert mturk_push_review(assignment, client=client) == REJECTED
    _get(stub, APPROVED)  # auto-approved on MTurk meanwhile
    with pytest.raises(Conflict, match="already approved"):
        mturk_push_review(assignment, client=client)


def test_undecided_work_is_not_sent(client, batch):
    assignment = _decided(batch, Assignment.Status.SUBMITTED)
    with pytest.raises(Conflict):
        mturk_push_review(assignment, client=client)


def test_a_bonus_carries_a_token_that_makes_a_retry_harmless(client, stub, batch):
    assignment = _decided(batch, Assignment.Status.APPROVED)
    expected = {"WorkerId": "W1", "BonusAmount": "0.25", "AssignmentId": "ASG1", "Reason": "Careful work",
                "UniqueRequestToken": request_token("bonus", assignment.pk)}
    stub.add_response("send_bonus", {}, expected)
    stub.add_response("send_bonus", {}, expected)  # the retry sends the very same token
    worker_bonus(assignment, amount=Decimal("0.25"), reason="Careful work ", client=client)
    worker_bonus(assignment, amount=Decimal("0.250"), reason="Careful work", client=client)
    with pytest.raises(CrowdError, match="positive amount"):
        worker_bonus(assignment, amount=Decimal("0"), reason="x", client=client)


def test_block_expire_and_balance(client, stub, batch):
    stub.add_response("create_worker_block", {}, {"WorkerId": "W1", "Reason": "Failed most checks"})
    worker_block(client, "W1", "Failed most checks")
    Hit.objects.filter(batch=batch).update(external_id="MTHIT")
    for _ in range(2):
        stub.add_response("update_expiration_for_hit", {}, {"HITId": "MTHIT", "ExpireAt": datetime(2015, 1, 1)})
    assert batch_expire_mturk(batch, client=client) == 2
    stub.add_response("get_account_balance", {"AvailableBalance": "10000.00"}, {})
    assert account_balance(client) == Decimal("10000.00")
    with pytest.raises(CrowdError, match="reason"):
        worker_block(client, "W1", " ")


# --- answers count once MTurk confirms them ------------------------------------------------------------

def _counted(batch) -> set[int]:
    """The assignments whose answers aggregation reads (results' own selector, not a copy of its rule)."""
    return set(counted_annotation_rows(layer=batch.hits.first().unit.layer).values_list("assignment_id", flat=True))


def _mturk_has(stub, assignment_id="ASG1", *, worker="W1", hit="MTHIT0", status=SUBMITTED):
    stub.add_response("get_assignment", {
        "Assignment": {"AssignmentId": assignment_id, "WorkerId": worker, "HITId": hit, "AssignmentStatus": status},
        "HIT": {"HITId": hit}}, {"AssignmentId": assignment_id})


def test_a_genuine_answer_counts_only_after_mturk_confirms_it(client, stub, batch):
    genuine = _submitted(batch, sentinels_missed=1)
    assert _counted(batch) == set()  # stored, but held out of aggregation ...
    assert worker_checks(worker_id=genuine.worker_id, project_id=batch.project_id).checks == 0  # ... and quality
    assert not profile_get(genuine.worker).flagged_at
    _mturk_has(stub)
    assert assignment_confirm_mturk(genuine, client=client) == "confirmed"
    genuine.refresh_from_db()
    assert (genuine.status, genuine.external_status) == (Assignment.Status.SUBMITTED, SUBMITTED)
    assert _counted(batch) == {genuine.pk}
    assert worker_checks(worker_id=genuine.worker_id, project_id=batch.project_id).checks == 1
    assert profile_get(genuine.worker).flagged_at  # the missed sentinel is theirs now
    assert assignment_confirm_mturk(genuine, client=client) == "done"  # a second check asks MTurk nothing


@pytest.mark.parametrize("mturk_says", [{"worker": "SOMEONEELSE"}, {"hit": "OTHERHIT"}])
def test_a_forged_answer_is_void_and_never_counts(client, stub, batch, mturk_says):
    forged = _submitted(batch, worker_name="mturk-FORGER", external_id="ASG1")
    _mturk_has(stub, **mturk_says)
    assert assignment_confirm_mturk(forged, client=client) == "void"
    forged.refresh_from_db()
    assert (forged.status, forged.external_status) == (Assignment.Status.REJECTED, Assignment.VOID)
    assert _counted(batch) == set()
    assert worker_checks(worker_id=forged.worker_id, project_id=batch.project_id).checks == 0
    assert Hit.objects.get(pk=forged.hit_id).status == Hit.Status.ASSIGNABLE  # its slot is free again
    # A void answer is never sent to MTurk (the assignment there is someone else's).
    assert mturk_push_reviews([forged.pk]) == 0


def test_an_assignment_mturk_does_not_know_waits_and_stays_out(client, stub, batch):
    made_up = _submitted(batch, worker_name="mturk-FORGER", external_id="MADEUP1")
    for code in ("RequestError", "ServiceFault"):
        stub.add_client_error("get_assignment", service_error_code=code, expected_params={"AssignmentId": "MADEUP1"})
        assert assignment_confirm_mturk(made_up, client=client) == "wait"
    assert Assignment.objects.get(pk=made_up.pk).status == Assignment.Status.PENDING
    assert _counted(batch) == set()


def test_the_check_waits_when_the_project_has_no_mturk_credentials(batch):
    pending = _submitted(batch)
    assert outside_answer_check(pending.pk) == "wait"  # no credentials here: nothing called, nothing counted
    assert Assignment.objects.get(pk=pending.pk).status == Assignment.Status.PENDING


def test_a_confirmed_answer_of_a_worker_blocked_meanwhile_is_rejected(client, stub, batch):
    from units.crowd.annotators import annotator_block

    pending = _submitted(batch)
    annotator_block(user=pending.worker, reason="spam")
    _mturk_has(stub)
    assert assignment_confirm_mturk(pending, client=client) == "confirmed"
    assert Assignment.objects.get(pk=pending.pk).status == Assignment.Status.REJECTED


# --- the project's qualification type on MTurk -----------------------------------------------------

def test_passing_grants_the_projects_qualification_type_made_once(client, stub, batch):
    name = qualification_type_name(batch.project_id)
    stub.add_response("create_qualification_type", {"QualificationType": {"QualificationTypeId": "QT1"}},
                      {"Name": name, "Description": ANY, "QualificationTypeStatus": "Active", "AutoGranted": False})
    grant = {"QualificationTypeId": "QT1", "IntegerValue": 1, "SendNotification": False}
    stub.add_response("associate_qualification_with_worker", {}, {**grant, "WorkerId": "W1"})
    assert worker_qualify(batch.project_id, Channel.MTURK_SANDBOX, "W1", client=client) == "QT1"
    stub.add_response("associate_qualification_with_worker", {}, {**grant, "WorkerId": "W2"})  # no second type
    assert worker_qualify(batch.project_id, Channel.MTURK_SANDBOX, "W2", client=client) == "QT1"
    assert ChannelSettings.objects.get(project_id=batch.project_id).mturk_qualification_types == {
        Channel.MTURK_SANDBOX: "QT1"}


def test_a_retry_after_a_lost_answer_finds_the_qualification_type_by_name(client, stub, batch):
    owner = make_user("owner", requester=True)
    channel_settings_update(project=batch.project, by=owner, budget_cap=Decimal("5"))  # a row with other settings
    name = qualification_type_name(batch.project_id)
    stub.add_client_error("create_qualification_type", service_error_code="RequestError",
                          service_message="You have already created a QualificationType with this name.")
    stub.add_response("list_qualification_types", {"QualificationTypes": [
        {"QualificationTypeId": "QTX", "Name": "someone else's"}, {"QualificationTypeId": "QT7", "Name": name}]},
        {"Query": name, "MustBeRequestable": False, "MustBeOwnedByCaller": True, "MaxResults": 100})
    stub.add_response("associate_qualification_with_worker", {}, {
        "QualificationTypeId": "QT7", "WorkerId": "W1", "IntegerValue": 1, "SendNotification": False})
    assert worker_qualify(batch.project_id, Channel.MTURK_SANDBOX, "W1", client=client) == "QT7"
    row = ChannelSettings.objects.get(project_id=batch.project_id)
    assert row.budget_cap == Decimal("5")  # kept
    # Neither name found nor made: MTurk's refusal is the requester's to read.
    stub.add_client_error("create_qualification_type", service_error_code="RequestError", service_message="no")
    stub.add_response("list_qualification_types", {"QualificationTypes": []}, {
        "Query": name, "MustBeRequestable": False, "MustBeOwnedByCaller": True, "MaxResults": 100})
    with pytest.raises(MTurkError, match="CreateQualificationType|create_qualification_type"):
        worker_qualify(batch.project_id, Channel.MTURK_LIVE, "W1", client=client)


def test_the_check_is_asked_again_with_growing_waits_until_the_last(batch, monkeypatch, settings,
                                                                      django_capture_on_commit_callbacks):
    import annotate_site.celery
    from tasks.crowd import outside_confirm
    from units.crowd.external_work import CONFIRM_WAITS, outside_answer_confirm_later

    sent = []
    monkeypatch.setattr(annotate_site.celery, "enqueue_in", lambda delay, name, *args: sent.append((delay, name,
                                                                                                      *args)))
    monkeypatch.setattr("units.crowd.external_work.enqueue_in", annotate_site.celery.enqueue_in)
    pending = _submitted(batch)
    settings.CROWD_CONFIRM_OUTSIDE_ANSWERS = True
    with django_capture_on_commit_callbacks(execute=True):
        outside_answer_confirm_later(pending.pk)
    assert sent == [(CONFIRM_WAITS[0], "tasks.crowd.outside_confirm", pending.pk, 0)]
    # No credentials here: MTurk cannot be asked, so every try but the last schedules the next.
    assert outside_confirm(pending.pk, 0) == "wait"
    assert sent[-1] == (CONFIRM_WAITS[1], "tasks.crowd.outside_confirm", pending.pk, 1)
    before = len(sent)
    assert outside_confirm(pending.pk, len(CONFIRM_WAITS) - 1) == "wait"
    assert len(sent) == before  # the last try schedules nothing: the periodic sync decides from there
    settings.CROWD_CONFIRM_OUTSIDE_ANSWERS = False
    with django_capture_on_commit_callbacks(execute=True):
        outside_answer_confirm_later(pending.pk)
    assert len(sent) == before

"""Mechanical Turk through boto3's `mturk` client (API 2017-01-17, region us-east-1 only).

A batch on an MTurk channel becomes one HIT type (title, reward, durations, keywords) and one MTurk HIT per
UnitCrowd HIT, whose ExternalQuestion frames this site's external HIT page. The rules:

- Publishing is idempotent: a HIT with an `external_id` is never created again, and each creation carries a
  UniqueRequestToken derived from the HIT (and the site), so a retry after a lost answer cannot create a
  second MTurk HIT; MTurk refuses the repeated token, and the HIT is then found by its RequesterAnnotation.
- Decisions are ours first: the review page decides here, then `mturk_push_review` tells MTurk, after
  re-reading the assignment's status there (approving what MTurk already approved is a no-op, a double click
  or a retry never errors; rejecting what MTurk approved is refused with a message).
- A worker who passes the project's qualification test (taken inside the accepted HIT, units/crowd/views/
  external.py) is granted the project's MTurk qualification type (value 1), made on the first pass. The HIT
  type does not require it: a worker takes the test only after accepting a HIT, so requiring it would shut
  out every new worker. It is MTurk's record of who passed, for requirements the requester sets there.
- Every call's failure (MTurk answers RequestError or ServiceFault, or the network fails) becomes an
  `MTurkError` with MTurk's message: no page shows a traceback, and no secret is in the message.

Facts (endpoints, fees, the ExternalQuestion schema) are MTurk's documented ones; the fee is in channels.py.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from .channels import channel_credentials
from .confirmation import VOID, outside_answer_confirm, outside_answer_void
from .errors import Conflict, CrowdError
from .models import Assignment, Channel, ChannelSettings, Hit, HitBatch, HitKind

REGION = "us-east-1"
ENDPOINTS = {Channel.MTURK_SANDBOX: "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
             Channel.MTURK_LIVE: "https://mturk-requester.us-east-1.amazonaws.com"}
# Where workers see the HIT page framed: the only sites allowed to frame it (frame-ancestors).
WORKER_SITES = {Channel.MTURK_SANDBOX: "https://workersandbox.mturk.com",
                Channel.MTURK_LIVE: "https://www.mturk.com"}
EXTERNAL_QUESTION_XMLNS = ("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/"
                           "ExternalQuestion.xsd")
FRAME_HEIGHT = 800
TITLE = "Name what this neural network unit detects"
DESCRIPTION = "Look at the highlighted regions of a few pictures and name the concept they share."
VERIFY_TITLE = "Check a proposed label for a neural network unit"
VERIFY_DESCRIPTION = "Look at the highlighted regions of a few pictures and say whether a proposed label fits."
KEYWORDS = "image, labelling, neural network, interpretability"
# MTurk's statuses of a submitted assignment (the Assignment shape's AssignmentStatus).
SUBMITTED, APPROVED, REJECTED = "Submitted", "Approved", "Rejected"
PAGE_SIZE = 100  # MTurk's largest page of ListAssignmentsForHIT


class MTurkError(CrowdError):
    """MTurk refused a call or could not be reached; the message is MTurk's, for the requester."""

    status_code = 502


def mturk_client(project_id: int, channel: str) -> Any:
    """A boto3 `mturk` client for the project's credentials, on the channel's endpoint (sandbox or live)."""
    import boto3  # loaded by the few processes that talk to MTurk

    if channel not in ENDPOINTS:
        raise CrowdError(f"Batch channel {channel!r} is not Mechanical Turk.")
    creds = channel_credentials(project_id)
    if not creds.has_mturk:
        raise CrowdError("No Mechanical Turk credentials for this project.")
    from botocore.config import Config

    # Short waits: a page that shows MTurk's answer (the balance) must not hang on an unreachable MTurk.
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3})
    return boto3.client("mturk", region_name=REGION, endpoint_url=ENDPOINTS[channel], config=config,
                        aws_access_key_id=creds.mturk_access_key_id, aws_secret_access_key=creds.mturk_secret)


def mturk_call(client: Any, operation: str, **params: Any) -> dict:
    """One MTurk call; every failure becomes an MTurkError carrying MTurk's message."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, operation)(**params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise MTurkError(f"Mechanical Turk refused {operation} ({error.get('Code', 'error')}): "
                         f"{error.get('Message', '')}".strip()) from None
    except BotoCoreError as exc:
        raise MTurkError(f"Mechanical Turk could not be reached for {operation}: {type(exc).__name__}.") from None


# --- publishing -----------------------------------------------------------------------------------

def external_question(url: str, frame_height: int = FRAME_HEIGHT) -> str:
    if not url.startswith("https://"):
        raise CrowdError("MTurk's ExternalURL must be an https:// address: set SITE_URL to one.")
    return (f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_XMLNS}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{int(frame_height)}</FrameHeight></ExternalQuestion>")


def hit_page_url(hit: Hit) -> str:
    return settings.SITE_URL + reverse("crowd:mturk_hit", args=[hit.pk])


def request_token(kind: str, *parts: object) -> str:
    """A UniqueRequestToken (at most 64 characters) that names the same request on every retry, and differs
    between two sites sharing an MTurk account (their SITE_URL and SECRET_KEY differ)."""
    digest = hashlib.sha256("|".join([settings.SITE_URL, settings.SECRET_KEY, kind, *map(str, parts)]).encode())
    return f"uc-{kind}-{digest.hexdigest()[:40]}"


def requester_annotation(hit: Hit) -> str:
    return f"unitcrowd hit {hit.pk} batch {hit.batch_id}"


# MTurk's system qualifications asked of live workers: at least 95% of their work approved, over at least 100
# HITs. The sandbox's workers are testers with no such record, so it asks none.
APPROVAL_RATE_QUALIFICATION = "000000000000000000L0"
APPROVED_HITS_QUALIFICATION = "00000000000000000040"
LIVE_REQUIREMENTS = [
    {"QualificationTypeId": APPROVAL_RATE_QUALIFICATION, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [95],
     "ActionsGuarded": "PreviewAndAccept"},
    {"QualificationTypeId": APPROVED_HITS_QUALIFICATION, "Comparator": "GreaterThanOrEqualTo", "IntegerValues": [100],
     "ActionsGuarded": "PreviewAndAccept"},
]


def hit_type_create(client: Any, batch: HitBatch) -> str:
    """The batch's HIT type on MTurk (MTurk returns the same id for the same properties)."""
    verify = batch.kind == HitKind.VERIFY
    params: dict[str, Any] = {"Title": VERIFY_TITLE if verify else TITLE,
                              "Description": VERIFY_DESCRIPTION if verify else DESCRIPTION, "Keywords": KEYWORDS,
                              "Reward": f"{batch.reward:.2f}",
                              "AssignmentDurationInSeconds": batch.assignment_duration_seconds,
                              "AutoApprovalDelayInSeconds": batch.auto_approval_delay_seconds}
    if batch.channel == Channel.MTURK_LIVE:
        params["QualificationRequirements"] = LIVE_REQUIREMENTS
    return mturk_call(client, "create_hit_type", **params)["HITTypeId"]


@dataclass
class MTurkPublishReport:
    created: int = 0
    already: int = 0
    recovered: int = 0  # created by an earlier try whose answer was lost, found again by annotation

    def __str__(self) -> str:
        return f"{self.created} MTurk HIT(s) created, {self.already} already there, {self.recovered} recovered"


def batch_publish_mturk(batch: HitBatch, *, client: Any | None = None) -> MTurkPublishReport:
    """Create the batch's HIT type and one MTurk HIT per HIT that has none yet. Safe to run again."""
    client = client or mturk_client(batch.project_id, batch.channel)
    if not batch.external_id:
        type_id = hit_type_create(client, batch)
        HitBatch.objects.filter(pk=batch.pk, external_id="").update(external_id=type_id)
        batch.external_id = HitBatch.objects.values_list("external_id", flat=True).get(pk=batch.pk)
    report = MTurkPublishReport()
    now = timezone.now()
    for hit in batch.hits.order_by("pk"):
        if hit.external_id:
            report.already += 1
            continue
        lifetime = max(60, int((hit.expires_at - now).total_seconds()))
        try:
            response = mturk_call(client, "create_hit_with_hit_type", HITTypeId=batch.external_id,
                             MaxAssignments=hit.max_assignments, LifetimeInSeconds=lifetime,
                             Question=external_question(hit_page_url(hit)),
                             RequesterAnnotation=requester_annotation(hit),
                             UniqueRequestToken=request_token("hit", hit.pk))
            external_id = response["HIT"]["HITId"]
            report.created += 1
        except MTurkError:
            # A repeated token means an earlier try created it: find it rather than fail (or create twice).
            external_id = _find_hit(client, requester_annotation(hit))
            if external_id is None:
                raise
            report.recovered += 1
        Hit.objects.filter(pk=hit.pk, external_id="").update(external_id=external_id)
    return report


def _find_hit(client: Any, annotation: str) -> str | None:
    token = None
    while True:
        page = mturk_call(client, "list_hits", MaxResults=PAGE_SIZE, **({"NextToken": token} if token else {}))
        for item in page.get("HITs", []):
            if item.get("RequesterAnnotation") == annotation:
                return item["HITId"]
        token = page.get("NextToken")
        if not token:
            return None


def batch_expire_mturk(batch: HitBatch, *, client: Any | None = None) -> int:
    """Expire the batch's MTurk HITs now (workers who hold one may still submit it)."""
    client = client or mturk_client(batch.project_id, batch.channel)
    n = 0
    for external_id in batch.hits.exclude(external_id="").values_list("external_id", flat=True):
        mturk_call(client, "update_expiration_for_hit", HITId=external_id, ExpireAt=datetime(2015, 1, 1))
        n += 1
    return n


def account_balance(client: Any) -> Decimal:
    return Decimal(mturk_call(client, "get_account_balance")["AvailableBalance"])


# --- qualification ---------------------------------------------------------------------------------

def qualification_type_name(project_id: int) -> str:
    """The type's name, unique per requester account: two sites sharing an account name theirs differently."""
    return f"UnitCrowd project {project_id} qualified {request_token('qualification', project_id)[-8:]}"


def qualification_type_of(client: Any, project_id: int, channel: str) -> str:
    """The project's qualification type on `channel`, made the first time. A retry after a lost answer finds the
    type made by the earlier try by its name (MTurk refuses a second type of the same name)."""
    stored = ChannelSettings.objects.filter(project_id=project_id).values_list(
        "mturk_qualification_types", flat=True).first() or {}
    if stored.get(channel):
        return stored[channel]
    name = qualification_type_name(project_id)
    try:
        type_id = mturk_call(client, "create_qualification_type", Name=name, QualificationTypeStatus="Active",
                             Description="Passed this requester's qualification test for naming what neural "
                                         "network units detect.",
                             AutoGranted=False)["QualificationType"]["QualificationTypeId"]
    except MTurkError:
        found = mturk_call(client, "list_qualification_types", Query=name, MustBeRequestable=False,
                           MustBeOwnedByCaller=True, MaxResults=PAGE_SIZE).get("QualificationTypes", [])
        type_id = next((t["QualificationTypeId"] for t in found if t.get("Name") == name), None)
        if type_id is None:
            raise
    row, _ = ChannelSettings.objects.get_or_create(project_id=project_id)
    row.mturk_qualification_types = {**row.mturk_qualification_types, channel: type_id}
    row.save(update_fields=["mturk_qualification_types"])
    return type_id


def worker_qualify(project_id: int, channel: str, worker_id: str, *, client: Any | None = None) -> str:
    """Grant a worker who passed the project's test its qualification type on MTurk (granting again is
    harmless: MTurk keeps one value per worker and type). Returns the type's id."""
    client = client or mturk_client(project_id, channel)
    type_id = qualification_type_of(client, project_id, channel)
    mturk_call(client, "associate_qualification_with_worker", QualificationTypeId=type_id, WorkerId=worker_id,
               IntegerValue=1, SendNotification=False)
    return type_id


# --- assignments ---------------------------------------------------------------------------------

def hit_assignments(client: Any, hit_external_id: str) -> Iterator[dict]:
    """Every submitted, approved or rejected MTurk assignment of a HIT, page after page."""
    token = None
    while True:
        params: dict[str, Any] = {"HITId": hit_external_id, "MaxResults": PAGE_SIZE,
                                  "AssignmentStatuses": [SUBMITTED, APPROVED, REJECTED]}
        if token:
            params["NextToken"] = token
        page = mturk_call(client, "list_assignments_for_hit", **params)
        yield from page.get("Assignments", [])
        token = page.get("NextToken")
        if not token:
            return


@dataclass
class SyncReport:
    matched: int = 0
    unmatched: int = 0  # submitted on MTurk without an answer stored here (or under another worker)
    unlisted: int = 0  # stored here, but never submitted on MTurk in time: rejected here

    def __str__(self) -> str:
        return (f"{self.matched} MTurk assignment(s) matched, {self.unmatched} without a stored answer, "
                f"{self.unlisted} stored answer(s) MTurk never had, rejected")


def batch_sync_mturk(batch: HitBatch, *, client: Any | None = None) -> SyncReport:
    """Read the batch's assignments from MTurk and record MTurk's status on the answers stored here.

    An answer stored here counts as MTurk's only when MTurk lists its AssignmentId under the same worker:
    the HIT page's parameters come from the worker's browser, MTurk's list does not. A pending answer MTurk
    lists is confirmed (units/crowd/confirmation.py); one MTurk never lists is void once a whole assignment
    duration has passed since it was handed in."""
    client = client or mturk_client(batch.project_id, batch.channel)
    report = SyncReport()
    for hit in batch.hits.exclude(external_id=""):
        for item in hit_assignments(client, hit.external_id):
            row = (Assignment.objects.filter(hit=hit, external_id=item["AssignmentId"],
                                             worker__username=mturk_username(item["WorkerId"]))
                   .exclude(external_status=VOID).values_list("pk", "status").first())
            if row is None:
                report.unmatched += 1
                continue
            report.matched += 1
            if row[1] == Assignment.Status.PENDING:
                outside_answer_confirm(row[0], external_status=item["AssignmentStatus"])
            else:
                Assignment.objects.filter(pk=row[0]).update(external_status=item["AssignmentStatus"])
        report.unlisted += _void_unlisted(hit)
    return report


def _void_unlisted(hit: Hit, *, now: datetime | None = None) -> int:
    """Answers stored here that MTurk still does not list a whole assignment duration after they were handed
    in: forged (the page's parameters come from the browser) or never sent to MTurk. Nobody pays for them,
    so they never count either: void here (MTurk has nothing to hear of)."""
    now = now or timezone.now()
    late = now - timedelta(seconds=hit.assignment_duration_seconds)
    ids = Assignment.objects.filter(hit=hit, status=Assignment.Status.PENDING,
                                    submitted_at__lt=late).values_list("pk", flat=True)
    return sum(outside_answer_void(pk, reason="Not submitted on Mechanical Turk.", now=now) for pk in list(ids))


def assignment_confirm_mturk(assignment: Assignment, *, client: Any | None = None) -> str:
    """Ask MTurk about a pending answer: "confirmed" when MTurk has its assignment submitted by this worker on
    this HIT, "void" when MTurk's assignment belongs to another HIT or worker, "wait" when MTurk does not
    know it (yet: the browser posts to MTurk after the answer is stored here) or answers an error."""
    if assignment.status != Assignment.Status.PENDING:
        return "done"
    hit = assignment.hit
    client = client or mturk_client(hit.batch.project_id, hit.batch.channel)
    try:
        item = mturk_call(client, "get_assignment", AssignmentId=assignment.external_id)["Assignment"]
    except MTurkError:
        return "wait"
    if item.get("HITId") != hit.external_id or mturk_username(item.get("WorkerId", "")) != assignment.worker.username:
        outside_answer_void(assignment.pk, reason="Mechanical Turk knows this assignment under another HIT or "
                                                  "worker.")
        return "void"
    if item.get("AssignmentStatus") not in (SUBMITTED, APPROVED, REJECTED):
        return "wait"
    outside_answer_confirm(assignment.pk, external_status=item["AssignmentStatus"])
    return "confirmed"


def mturk_sync_open_batches(*, now: datetime | None = None) -> str:
    """`batch_sync_mturk` for every MTurk batch with a HIT not yet disposed; a failing batch does not stop the
    others (its error is in the summary)."""
    now = now or timezone.now()
    lines = []
    batches = HitBatch.objects.filter(channel__in=ENDPOINTS, hits__external_id__gt="").exclude(
        hits__status=Hit.Status.DISPOSED, hits__expires_at__lt=now - timedelta(days=31)).distinct()
    for batch in batches:
        try:
            lines.append(f"batch {batch.pk}: {batch_sync_mturk(batch)}")
        except CrowdError as exc:
            lines.append(f"batch {batch.pk}: {exc}")
    return "; ".join(lines) or "no MTurk batch to read"


def mturk_push_reviews(assignment_ids: list[int]) -> int:
    """`mturk_push_review` for each of these MTurk assignments; returns how many MTurk now agrees with."""
    rows = Assignment.objects.filter(pk__in=assignment_ids, hit__batch__channel__in=ENDPOINTS).exclude(
        external_id="").exclude(external_status=VOID).select_related("hit__batch")
    return sum(1 for assignment in rows if mturk_push_review(assignment))


def mturk_username(worker_id: str) -> str:
    return f"mturk-{worker_id}"


def mturk_push_review(assignment: Assignment, *, client: Any | None = None) -> str:
    """Tell MTurk our decision on `assignment` (approved or rejected here). Re-reads MTurk's status first, so a
    retry or a second click does nothing twice; returns MTurk's status afterwards."""
    if assignment.status not in (Assignment.Status.APPROVED, Assignment.Status.REJECTED):
        raise Conflict("Only approved or rejected work is sent to Mechanical Turk.")
    if not assignment.external_id:
        raise CrowdError(f"Assignment {assignment.pk} has no MTurk assignment id.")
    batch = assignment.hit.batch
    client = client or mturk_client(batch.project_id, batch.channel)
    status = mturk_call(client, "get_assignment", AssignmentId=assignment.external_id)["Assignment"]["AssignmentStatus"]
    want = APPROVED if assignment.status == Assignment.Status.APPROVED else REJECTED
    action = review_action(status, want)
    if action == "approve":
        mturk_call(client, "approve_assignment", AssignmentId=assignment.external_id,
              RequesterFeedback=assignment.feedback[:1024] or "Thank you.")
    elif action == "reject":
        mturk_call(client, "reject_assignment", AssignmentId=assignment.external_id,
              RequesterFeedback=assignment.feedback[:1024])
    elif action == "refuse":
        raise Conflict(f"MTurk already approved assignment {assignment.external_id}; it cannot be rejected.")
    Assignment.objects.filter(pk=assignment.pk).update(external_status=want)
    return want


def review_action(mturk_status: str, want: str) -> str:
    """What to do for our decision `want` given MTurk's status: "approve", "reject", "none" or "refuse".

    Approving a rejected assignment overrides nothing here: the requester rejected it on MTurk too (or MTurk
    rejected it), and a later change of mind is theirs to make on MTurk."""
    table = {
        (SUBMITTED, APPROVED): "approve", (SUBMITTED, REJECTED): "reject",
        (APPROVED, APPROVED): "none", (REJECTED, REJECTED): "none",
        (APPROVED, REJECTED): "refuse", (REJECTED, APPROVED): "refuse",
    }
    if (mturk_status, want) not in table:
        raise MTurkError(f"Mechanical Turk answered an unknown assignment status {mturk_status!r}.")
    return table[(mturk_status, want)]


def worker_bonus(assignment: Assignment, *, amount: Decimal, reason: str, client: Any | None = None) -> None:
    """Pay a bonus once per assignment: the token makes a retry a no-op on MTurk's side."""
    amount = Decimal(amount).quantize(Decimal("0.01"))
    if amount <= 0 or not reason.strip():
        raise CrowdError("A bonus needs a positive amount and a reason the worker will read.")
    batch = assignment.hit.batch
    client = client or mturk_client(batch.project_id, batch.channel)
    mturk_call(client, "send_bonus", WorkerId=assignment.worker.username.removeprefix("mturk-"),
          BonusAmount=f"{amount:.2f}", AssignmentId=assignment.external_id, Reason=reason.strip(),
          UniqueRequestToken=request_token("bonus", assignment.pk))


def worker_block(client: Any, worker_id: str, reason: str) -> None:
    if not reason.strip():
        raise CrowdError("Blocking a worker on MTurk needs a reason (MTurk shows it to them).")
    mturk_call(client, "create_worker_block", WorkerId=worker_id, Reason=reason.strip())

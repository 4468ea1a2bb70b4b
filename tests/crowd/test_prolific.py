"""Prolific against a local fake of its API (the documented endpoints): the study page from arrival to the
completion URL, the submissions' transitions after review (with the right rejection category), and bonuses
paid exactly once."""
from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD, make_hits, make_job, make_project, make_user
from units.crowd.channels import channel_settings_update
from units.crowd.external_work import outside_answer_check
from units.crowd.models import Annotation, Assignment, BonusPayment, Channel, HitBatch
from units.crowd.prolific import STATUSES, ProlificError, review_action, submission_push_review
from units.crowd.review import assignments_review

pytestmark = pytest.mark.django_db
TOKEN = "prolific-test-token"
CATEGORIES = {"TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK",
              "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_PREF", "OTHER"}


class FakeProlific:
    """Submissions with statuses; transitions, bonus set-up and pay, each recorded; `Token` auth checked."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}
        self.owners: dict[str, tuple[str, str]] = {}  # submission -> (participant, study)
        self.balances: dict[str, int] = {}  # workspace -> available balance in pence
        self.calls: list[tuple[str, str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Token {TOKEN}":
                    self._reply(401, {"error": "invalid token"})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorised():
                    return
                if balance := re.fullmatch(r"/api/v1/workspaces/(\w+)/balance/", self.path):
                    if balance[1] not in fake.balances:
                        return self._reply(404, {"error": "not found"})
                    return self._reply(200, {"currency_code": "GBP", "total_balance": fake.balances[balance[1]] + 500,
                                             "available_balance": fake.balances[balance[1]]})
                match = re.fullmatch(r"/api/v1/submissions/(\w+)/", self.path)
                if not match or match[1] not in fake.statuses:
                    return self._reply(404, {"error": "not found"})
                fake.calls.append(("GET", self.path, {}))
                participant, study = fake.owners.get(match[1], ("", ""))
                self._reply(200, {"id": match[1], "status": fake.statuses[match[1]], "participant": participant,
                                  "study_id": study})

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.calls.append(("POST", self.path, body))
                if match := re.fullmatch(r"/api/v1/submissions/(\w+)/transition/", self.path):
                    if fake.statuses.get(match[1]) != "AWAITING REVIEW":
                        return self._reply(400, {"error": "submission is not awaiting review"})
                    if body.get("action") == "REJECT" and (body.get("rejection_category") not in CATEGORIES
                                                           or not body.get("message")):
                        return self._reply(400, {"error": "rejection needs a category and a message"})
                    if body.get("action") not in ("APPROVE", "REJECT"):
                        return self._reply(400, {"error": "unknown action"})
                    fake.statuses[match[1]] = "APPROVED" if body["action"] == "APPROVE" else "REJECTED"
                    return self._reply(200, {"id": match[1], "status": fake.statuses[match[1]]})
                if self.path == "/api/v1/submissions/bonus-payments/":
                    return self._reply(201, {"id": "bulk1", "study": body.get("study_id"), "total_amount": 60})
                if re.fullmatch(r"/api/v1/bulk-bonus-payments/\w+/pay/", self.path):
                    return self._reply(202, {})
                self._reply(404, {"error": "not found"})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, fragment: str) -> list[dict]:
        return [body for method, path, body in self.calls if method == "POST" and fragment in path]


@pytest.fixture
def prolific(settings):
    fake = FakeProlific()
    settings.PROLIFIC_API_URL = fake.url
    settings.SITE_URL = "https://crowd.example.org"
    yield fake
    fake.server.shutdown()


@pytest.fixture
def study(prolific, media_root):
    owner = make_user("olga", requester=True)
    project = make_project("Lab A", owner=owner)
    channel_settings_update(project=project, by=owner, prolific_token=TOKEN, prolific_completion_code="C0DE42",
                            prolific_hits_per_participant=2)
    job = make_job(project=project, layers={"conv3": 3}, exemplars_per_unit=2, write_pictures=True)
    hit = make_hits(job, assignments=2)[0]
    HitBatch.objects.filter(pk=hit.batch_id).update(channel=Channel.PROLIFIC)
    return owner, project, HitBatch.objects.get(pk=hit.batch_id)


def _arrive(client, batch, pid="PID1", study_id="STUDY1", session="SESS1"):
    return client.get(f"/crowd/prolific/{batch.pk}/?PROLIFIC_PID={pid}&STUDY_ID={study_id}&SESSION_ID={session}")


def _answer(client, batch, word="dog"):
    return client.post(f"/crowd/prolific/{batch.pk}/", {"word": word, "category": "object", "confidence": 3})


def test_a_participant_works_the_configured_number_of_hits_then_goes_to_the_completion_url(study):
    _, _, batch = study
    client = Client()
    first = _arrive(client, batch)
    assert first.status_code == 200 and "HIT 1 of 2" in first.content.decode()
    assert _answer(client, batch)["Location"] == f"/crowd/prolific/{batch.pk}/"
    assert "HIT 2 of 2" in client.get(f"/crowd/prolific/{batch.pk}/").content.decode()
    assert _answer(client, batch, word="cat")["Location"] == f"/crowd/prolific/{batch.pk}/"
    done = client.get(f"/crowd/prolific/{batch.pk}/")  # nothing left for them: off to Prolific with the code
    assert done.status_code == 302
    assert done["Location"] == "https://app.prolific.com/submissions/complete?cc=C0DE42"
    participant = get_user_model().objects.get(username="prolific-PID1")
    assert not participant.has_usable_password()
    rows = Assignment.objects.filter(worker=participant)
    # Stored, but pending until Prolific confirms the submission is this participant's in this study.
    assert sorted(rows.values_list("external_id", "status")) == [("SESS1", "pending")] * 2
    assert len({a.hit_id for a in rows}) == 2
    assert HitBatch.objects.get(pk=batch.pk).external_id == "STUDY1"


def test_the_study_page_refuses_what_prolific_did_not_send(study):
    _, project, batch = study
    assert Client().get(f"/crowd/prolific/{batch.pk}/").status_code == 400  # no ids, no session
    assert _arrive(Client(), batch, pid="bad id!").status_code == 400
    _arrive(Client(), batch)
    assert _arrive(Client(), batch, pid="PID2", study_id="OTHERSTUDY").status_code == 400
    site = make_hits(make_job(project=project, layers={"conv4": 1}, exemplars_per_unit=2))[0]
    assert _arrive(Client(), site.batch).status_code == 404
    assert not Assignment.objects.filter(worker__username="prolific-PID2").exists()


def _worked(study, prolific, *, sentinel_missed=False):
    _, _, batch = study
    client = Client()
    _arrive(client, batch)
    _answer(client, batch)
    _answer(client, batch, word="cat")
    prolific.statuses["SESS1"], prolific.owners["SESS1"] = "ACTIVE", ("PID1", "STUDY1")
    pending = Assignment.objects.filter(external_id="SESS1", status="pending").values_list("pk", flat=True)
    assert [outside_answer_check(pk) for pk in pending] == ["confirmed", "confirmed"]
    assert Assignment.objects.filter(external_id="SESS1", status="submitted").count() == 2
    if sentinel_missed:
        Annotation.objects.filter(assignment__external_id="SESS1").update(sentinels_shown=1, sentinels_missed=1)
    prolific.statuses["SESS1"] = "AWAITING REVIEW"
    return list(Assignment.objects.filter(external_id="SESS1").values_list("pk", flat=True))


def test_a_submission_is_approved_once_all_its_answers_are_and_a_retry_sends_nothing(
        study, prolific, django_capture_on_commit_callbacks):
    owner, project, _ = study
    first, second = _worked(study, prolific)
    with django_capture_on_commit_callbacks(execute=True):
        assignments_review(assignment_ids=[first], approve=True, reviewer=owner)
    assert prolific.posts("transition") == []  # one answer still undecided
    with django_capture_on_commit_callbacks(execute=True):
        assignments_review(assignment_ids=[second], approve=True, reviewer=owner)
    assert prolific.posts("transition") == [{"action": "APPROVE"}]
    assert submission_push_review(project_id=project.pk, session_id="SESS1") == "none"
    assert len(prolific.posts("transition")) == 1


@pytest.mark.parametrize("missed, category", [(True, "FAILED_CHECK"), (False, "LOW_EFFORT")])
def test_a_rejection_says_whether_attention_checks_failed(study, prolific, django_capture_on_commit_callbacks,
                                                          missed, category):
    owner, _, _ = study
    ids = _worked(study, prolific, sentinel_missed=missed)
    with django_capture_on_commit_callbacks(execute=True):
        assignments_review(assignment_ids=ids, approve=False, feedback="Most checks were not ticked.",
                           reviewer=owner)
    assert prolific.posts("transition") == [{"action": "REJECT", "rejection_category": category,
                                             "message": "Most checks were not ticked."}]
    assert prolific.statuses["SESS1"] == "REJECTED"


def test_every_submission_status_prolific_documents_has_an_answer():
    for status in STATUSES:
        for action in ("APPROVE", "REJECT"):
            assert review_action(status, action) in {"send", "none", "refuse", "wait"}
    with pytest.raises(ProlificError, match="unknown submission status"):
        review_action("PARTIALLY APPROVED", "APPROVE")


def test_a_bonus_is_set_up_and_paid_once(client, study, prolific, django_capture_on_commit_callbacks):
    owner, _, _ = study
    ids = _worked(study, prolific)
    Assignment.objects.filter(pk__in=ids).update(status=Assignment.Status.APPROVED)
    participant = get_user_model().objects.get(username="prolific-PID1")
    client.login(username=owner.username, password=PASSWORD)
    url = f"/crowd/review/annotators/{participant.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "bonus", "amount": "0.60", "reason": "Careful work"})
    assert prolific.posts("submissions/bonus-payments/") == [{"study_id": "STUDY1", "csv_bonuses": "SESS1,0.60\n"}]
    assert len(prolific.posts("/pay/")) == 1
    bonus = BonusPayment.objects.get()
    assert (bonus.external_id, bonus.amount, bonus.error) == ("bulk1", Decimal("0.60"), "")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "bonus", "amount": "0.60", "reason": "Careful work"})
    assert len(prolific.posts("/pay/")) == 1  # the newest approved assignment already had its bonus


def test_a_wrong_token_is_a_clear_error_that_does_not_show_the_token(study, prolific):
    _, project, _ = study
    _worked(study, prolific)
    Assignment.objects.filter(external_id="SESS1").update(status=Assignment.Status.APPROVED,
                                                          approved_at=timezone.now() - timedelta(seconds=1))
    channel_settings_update(project=project, by=None, prolific_token="wrong-token-123",
                            prolific_hits_per_participant=2)
    with pytest.raises(ProlificError, match=r"refused GET submissions/SESS1/ \(401\)") as caught:
        submission_push_review(project_id=project.pk, session_id="SESS1")
    assert "wrong-token-123" not in str(caught.value)


def test_a_hit_with_its_slots_taken_is_not_given_to_another_participant(study):
    _, _, batch = study
    hit = batch.hits.order_by("pk").first()  # 2 assignments wanted
    batch.hits.exclude(pk=hit.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # one HIT left
    for pid in ("PA", "PB"):
        _arrive(Client(), batch, pid=pid, session=f"S{pid}")
    assert hit.assignments.count() == 2
    third = _arrive(Client(), batch, pid="PC", session="SPC")
    assert third.status_code == 302  # nothing left for them: straight to the completion URL
    assert hit.assignments.count() == 2


# --- answers count once Prolific confirms them ----------------------------------------------------------

def _pending(study, session="SESS1", pid="PID1"):
    _, _, batch = study
    client = Client()
    _arrive(client, batch, pid=pid, session=session)
    _answer(client, batch)
    return Assignment.objects.get(external_id=session, status=Assignment.Status.PENDING)


def test_an_answer_counts_once_prolific_shows_its_submission_for_this_participant_and_study(study, prolific):
    pending = _pending(study)
    assert outside_answer_check(pending.pk) == "void"  # Prolific knows no SESS1: made up
    pending = _pending(study, session="SESS2", pid="PID2")
    prolific.statuses["SESS2"], prolific.owners["SESS2"] = "ACTIVE", ("PID2", "STUDY1")
    assert outside_answer_check(pending.pk) == "confirmed"
    assert Assignment.objects.get(pk=pending.pk).status == Assignment.Status.SUBMITTED
    assert outside_answer_check(pending.pk) == "done"


@pytest.mark.parametrize("owner, status", [
    (("SOMEONE", "STUDY1"), "ACTIVE"),  # another participant's submission
    (("PID1", "OTHERSTUDY"), "ACTIVE"),  # another study's
    (("PID1", "STUDY1"), "RETURNED"),  # returned: not paid, not counted
])
def test_a_submission_that_is_not_this_participants_in_this_study_voids_the_answer(study, prolific, owner, status):
    pending = _pending(study)
    prolific.statuses["SESS1"], prolific.owners["SESS1"] = status, owner
    assert outside_answer_check(pending.pk) == "void"
    pending.refresh_from_db()
    assert (pending.status, pending.external_status) == (Assignment.Status.REJECTED, Assignment.VOID)
    # A void answer decides nothing about the submission on Prolific: no rejection is sent for it.
    prolific.statuses["SESS1"] = "AWAITING REVIEW"
    assert submission_push_review(project_id=study[1].pk, session_id="SESS1") == "undecided"
    assert prolific.posts("transition") == []


def test_prolific_unreachable_keeps_the_answer_pending(study, prolific, settings):
    pending = _pending(study)
    settings.PROLIFIC_API_URL = "http://127.0.0.1:9/api/v1/"  # nothing listens there
    assert outside_answer_check(pending.pk) == "wait"
    assert Assignment.objects.get(pk=pending.pk).status == Assignment.Status.PENDING


def test_a_participant_who_fails_the_test_is_told_to_return_the_study_and_gets_no_code(study):
    from units.crowd.models import QualificationAttempt, QualificationSettings
    from units.dissection.models import Unit

    _, project, batch = study
    job = make_job(project=project, layers={"conv4": 2}, exemplars_per_unit=2, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(is_gold=True, gold_word="tree", gold_category="object")
    QualificationSettings.objects.create(project=project, size=2, pass_fraction=1.0, cooldown_minutes=30)
    client = Client()
    test = _arrive(client, batch).content.decode()
    assert 'id="qualification-form"' in test and "csrfmiddlewaretoken" in test
    attempt = QualificationAttempt.objects.get()
    answers = {f"word_{pk}": "car" for pk in attempt.unit_ids} | {f"category_{pk}": "object" for pk in attempt.unit_ids}
    failed = client.post(f"/crowd/prolific/{batch.pk}/", {"qualification_attempt": attempt.pk, **answers})
    page = failed.content.decode()
    assert failed.status_code == 200 and "return this study on Prolific" in page
    assert "C0DE42" not in page and not Assignment.objects.exists()
    later = client.get(f"/crowd/prolific/{batch.pk}/")  # no completion URL, however often they come back
    assert later.status_code == 200 and 'id="qualification-failed"' in later.content.decode()
    # A participant who passes goes on to the HITs.
    other = Client()
    _arrive(other, batch, pid="PID2", session="SESS2")
    attempt = QualificationAttempt.objects.get(user__username="prolific-PID2")
    answers = {f"word_{pk}": "tree" for pk in attempt.unit_ids} | {f"category_{pk}": "object"
                                                                   for pk in attempt.unit_ids}
    passed = other.post(f"/crowd/prolific/{batch.pk}/", {"qualification_attempt": attempt.pk, **answers})
    assert passed.status_code == 302
    assert "HIT 1 of 2" in other.get(passed["Location"]).content.decode()

"""The HIT page Mechanical Turk frames (units/crowd/views/external.py): preview, accept, answer, hand over to
MTurk; framed by MTurk's worker site only, every other page still refuses any frame."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.factories import make_hits, make_job, make_mturk_sandbox_hit, make_mturk_sandbox_verify_hit
from units.crowd.annotators import annotator_block
from units.crowd.models import Annotation, Assignment, Channel, Hit, HitBatch
from units.crowd.mturk import WORKER_SITES
from units.dissection.models import Exemplar

pytestmark = pytest.mark.django_db
SANDBOX = WORKER_SITES[Channel.MTURK_SANDBOX]


@pytest.fixture
def mturk_hit(media_root):
    return make_mturk_sandbox_hit(media_root, exemplars_per_unit=3)


def _url(hit, **params):
    query = {"hitId": "MTHIT0", "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", **params}
    return f"/crowd/mturk/hits/{hit.pk}/?" + "&".join(f"{k}={v}" for k, v in query.items())


def _accepted(hit, worker="W1", assignment="ASG1", submit_to=SANDBOX):
    return _url(hit, assignmentId=assignment, workerId=worker, turkSubmitTo=submit_to)


def _csp(response) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
            for d in (p.strip() for p in response["Content-Security-Policy"].split(";")) if d}


def test_preview_shows_pictures_and_instructions_with_inputs_disabled(mturk_hit):
    response = Client().get(_url(mturk_hit))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="mturk-preview"' in html and 'id="mturk-instructions"' in html
    assert "<fieldset disabled>" in html
    links = [part.split('"')[0] for part in html.split('<img src="')[1:]]
    assert len(links) == 4  # 3 top + 1 sentinel, all signed
    assert all(Client().get(link.replace("&amp;", "&")).status_code == 200 for link in links)
    assert not get_user_model().objects.filter(username__startswith="mturk-").exists()


def test_only_mturks_worker_site_may_frame_this_page_and_every_other_page_keeps_deny(mturk_hit, client):
    framed = Client().get(_url(mturk_hit))
    assert _csp(framed)["frame-ancestors"] == SANDBOX
    assert "X-Frame-Options" not in framed
    live = HitBatch.objects.filter(pk=mturk_hit.batch_id)
    live.update(channel=Channel.MTURK_LIVE)
    assert _csp(Client().get(_url(mturk_hit)))["frame-ancestors"] == WORKER_SITES[Channel.MTURK_LIVE]
    for other in ("/", "/crowd/", "/accounts/login/"):
        response = client.get(other)
        assert response["X-Frame-Options"] == "DENY", other
        assert _csp(response)["frame-ancestors"] == "'none'", other


def test_the_page_answers_404_to_a_site_hit_a_wrong_hit_id_and_unknown_ids(mturk_hit, media_root):
    site_hit = make_hits(make_job(layers={"conv4": 1}, exemplars_per_unit=2))[0]
    for url in (_url(site_hit), _url(mturk_hit, hitId="SOMEOTHER"), "/crowd/mturk/hits/999999/?hitId=MTHIT0",
                f"/crowd/mturk/hits/{mturk_hit.pk}/"):
        assert Client().get(url).status_code == 404, url


def test_accepting_makes_the_worker_an_annotator_without_a_password(mturk_hit):
    response = Client().get(_accepted(mturk_hit))
    assert response.status_code == 200
    assert "<fieldset>" in response.content.decode()
    worker = get_user_model().objects.get(username="mturk-W1")
    assert not worker.has_usable_password()
    assignment = Assignment.objects.get(hit=mturk_hit, worker=worker)
    assert (assignment.external_id, assignment.status) == ("ASG1", Assignment.Status.ACCEPTED)
    Client().get(_accepted(mturk_hit))  # a reload
    assert Assignment.objects.filter(hit=mturk_hit).count() == 1


@pytest.mark.parametrize("params", [
    {"worker": "W1", "submit_to": "https://evil.example.org"},  # the answer would go elsewhere
    {"worker": "W1", "submit_to": "https://www.mturk.com"},  # live site, sandbox batch
    {"worker": "w1;drop", "submit_to": SANDBOX},
    {"worker": "", "submit_to": SANDBOX},
])
def test_a_page_not_opened_from_the_batchs_mturk_site_is_refused(mturk_hit, params):
    response = Client().get(_accepted(mturk_hit, **params))
    assert response.status_code == 400
    assert not Assignment.objects.exists()


def test_the_answer_is_stored_first_then_posted_to_mturks_external_submit(mturk_hit):
    client = Client()
    page = client.get(_accepted(mturk_hit)).content.decode()
    ids = [part.split('"')[0] for part in page.split('name="non_fitting" value="')[1:]]
    sentinel = Exemplar.objects.get(unit=mturk_hit.unit, kind="sentinel").public_id
    response = client.post(_accepted(mturk_hit), {"word": "dog", "category": "object", "confidence": 4,
                                                  "non_fitting": [sentinel], "description": ""})
    assert response.status_code == 200
    annotation = Annotation.objects.get(assignment__external_id="ASG1")
    assert (annotation.word, annotation.category, annotation.sentinels_shown, annotation.sentinels_missed) == (
        "dog", "object", 1, 0)
    assert len(ids) == 4
    html = response.content.decode()
    assert f'action="{SANDBOX}/mturk/externalSubmit"' in html
    assert 'name="assignmentId" value="ASG1"' in html and 'name="word" value="dog"' in html
    assert SANDBOX in _csp(response)["form-action"]
    # A reload after submitting hands the stored answer over again, and never changes it.
    again = client.post(_accepted(mturk_hit), {"word": "cat", "category": "object", "confidence": 4})
    assert Annotation.objects.get(pk=annotation.pk).word == "dog"
    assert again.status_code == 409


def test_an_invalid_answer_is_shown_again_and_stores_nothing(mturk_hit):
    response = Client().post(_accepted(mturk_hit), {"word": "", "category": "nonsense", "confidence": 4})
    assert response.status_code == 200 and "mturk-answer" in response.content.decode()
    assert not Annotation.objects.exists()


def test_a_blocked_worker_is_told_so(mturk_hit):
    Client().get(_accepted(mturk_hit, assignment="ASG0"))
    annotator_block(user=get_user_model().objects.get(username="mturk-W1"), reason="spam")
    other = make_hits(make_job(layers={"conv5": 1}, exemplars_per_unit=2))[0]
    HitBatch.objects.filter(pk=other.batch_id).update(channel=Channel.MTURK_SANDBOX)
    Hit.objects.filter(pk=other.pk).update(external_id="MTHIT0")
    response = Client().get(_accepted(other))
    assert response.status_code == 403 and "no longer work" in response.content.decode()



# --- the project's qualification test, inside the HIT page --------------------------------------------

@pytest.fixture
def gold_project(mturk_hit):
    """The HIT's project gets two gold units (concept "tree", object) and a test of both, all to match."""
    from units.crowd.models import QualificationSettings
    from units.dissection.models import Unit

    project = mturk_hit.batch.project
    job = make_job(project=project, layers={"conv4": 2}, exemplars_per_unit=2, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(is_gold=True, gold_word="tree", gold_category="object")
    QualificationSettings.objects.create(project=project, size=2, pass_fraction=1.0, cooldown_minutes=30)
    return project


def _test_links(html: str) -> list[str]:
    return [part.split('"')[0].replace("&amp;", "&") for part in html.split('<img src="')[1:]]


def _hand_in(client, hit, html: str, *, word: str, **params):
    from units.crowd.models import QualificationAttempt

    attempt = QualificationAttempt.objects.get(pk=int(html.split('name="qualification_attempt" value="')[1]
                                                      .split('"')[0]))
    data = {"qualification_attempt": attempt.pk}
    for unit_id in attempt.unit_ids:
        data.update({f"word_{unit_id}": word, f"category_{unit_id}": "object"})
    return client.post(_accepted(hit, **params), data)


def test_an_unqualified_worker_takes_the_test_first_and_failing_sends_nothing_to_mturk(mturk_hit, gold_project):
    from units.crowd.models import Qualification

    client = Client()
    test = client.get(_accepted(mturk_hit))
    html = test.content.decode()
    assert test.status_code == 200 and 'id="qualification-form"' in html and "mturk-answer" not in html
    assert _csp(test)["frame-ancestors"] == SANDBOX
    links = _test_links(html)
    assert len(links) == 4 and all(Client().get(link).status_code == 200 for link in links)  # no session needed
    assert not Assignment.objects.exists()  # no HIT before the test is passed
    # Posting an answer to the HIT instead of the test gets the test again, and stores nothing.
    sneaky = client.post(_accepted(mturk_hit), {"word": "dog", "category": "object", "confidence": 4})
    assert 'id="qualification-form"' in sneaky.content.decode() and not Annotation.objects.exists()

    failed = _hand_in(client, mturk_hit, html, word="car")
    page = failed.content.decode()
    assert failed.status_code == 200 and 'id="qualification-failed"' in page
    assert "return this HIT on Mechanical Turk" in page and "0 of 2" in page
    assert "externalSubmit" not in page and 'name="assignmentId"' not in page  # nothing goes to MTurk
    assert not Assignment.objects.exists() and not Qualification.objects.exists()
    assert all(Client().get(link).status_code != 200 for link in links)  # the handed-in test's pictures close
    # Until the retake wait is over, every HIT of the project shows the same page, never the test again.
    again = Client().get(_accepted(mturk_hit, assignment="ASG2")).content.decode()
    assert 'id="qualification-failed"' in again and 'id="qualification-form"' not in again
    assert 'id="qualification-retake"' in again


def test_passing_the_test_opens_the_hit_and_grants_mturks_qualification(mturk_hit, gold_project, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    from units.crowd.qualification import qualification_state
    from units.crowd.views import external

    granted = []
    monkeypatch.setattr(external, "enqueue", lambda name, *args: granted.append((name, *args)))
    client = Client()
    html = client.get(_accepted(mturk_hit)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        passed = _hand_in(client, mturk_hit, html, word="tree")
    assert passed.status_code == 302 and passed["Location"] == _accepted(mturk_hit)
    worker = get_user_model().objects.get(username="mturk-W1")
    assert qualification_state(worker, gold_project).qualified
    assert granted == [("tasks.crowd.mturk_qualify", gold_project.pk, Channel.MTURK_SANDBOX, "W1")]
    hit_page = client.get(passed["Location"]).content.decode()
    assert "mturk-answer" in hit_page and "<fieldset>" in hit_page
    assert Assignment.objects.get(worker=worker).external_id == "ASG1"


def test_a_qualification_link_opens_only_its_own_tests_pictures(mturk_hit, gold_project):
    from units.crowd.models import QualificationAttempt
    from units.crowd.picture_links import PARAMETER, attempt_link_token

    html = Client().get(_accepted(mturk_hit)).content.decode()
    attempt = QualificationAttempt.objects.get()
    link = _test_links(html)[0]
    token = link.split(f"?{PARAMETER}=")[1]
    hit_picture = Exemplar.objects.filter(unit=mturk_hit.unit).first()
    # The test's token on a picture it does not show (the HIT's own), and a token of another attempt.
    assert Client().get(f"/pictures/{hit_picture.public_id}?{PARAMETER}={token}").status_code != 200
    shown = link.split("?")[0].rsplit("/", 1)[1]
    forged = attempt_link_token(public_id=shown, attempt_id=attempt.pk + 1, expires_at=timezone.now()
                                + timedelta(hours=1))
    assert Client().get(f"/pictures/{shown}?{PARAMETER}={forged}").status_code != 200
    assert Client().get(link).status_code == 200


def test_a_verify_hit_is_answered_yes_or_no_in_the_frame_and_waits_for_mturk(media_root):
    hit = make_mturk_sandbox_verify_hit()
    preview = Client().get(_url(hit)).content.decode()
    assert "Check a proposed label" in preview and f'id="proposed-label">{hit.proposed_label}<' in preview
    assert "<fieldset disabled>" in preview and 'name="word"' not in preview
    client = Client()
    assert 'name="verdict"' in client.get(_accepted(hit)).content.decode()
    bad = client.post(_accepted(hit), {"verdict": "maybe"})
    assert "mturk-answer" in bad.content.decode() and not Annotation.objects.exists()
    response = client.post(_accepted(hit), {"verdict": "no"})
    html = response.content.decode()
    assert f'action="{SANDBOX}/mturk/externalSubmit"' in html
    assert 'name="verdict" value="no"' in html and 'name="assignmentId" value="ASG1"' in html
    assignment = Assignment.objects.get(hit=hit)
    assert (assignment.status, assignment.annotation.verdict) == (Assignment.Status.PENDING, "no")


def test_a_worker_who_helped_make_a_crowd_label_may_not_verify_it(mturk_hit):
    from units.crowd.models import HitKind, LabelSource

    client = Client()
    client.get(_accepted(mturk_hit))
    client.post(_accepted(mturk_hit), {"word": "dog", "category": "object", "confidence": 4})
    verify = Hit.objects.create(batch=mturk_hit.batch, unit=mturk_hit.unit, kind=HitKind.VERIFY,
                                label_source=LabelSource.CROWD, proposed_label="dog", external_id="MTHITV",
                                max_assignments=3, expires_at=mturk_hit.expires_at)
    mine = Client().get(_url(verify, hitId="MTHITV", assignmentId="ASG7", workerId="W1", turkSubmitTo=SANDBOX))
    assert mine.status_code == 403 and "helped make" in mine.content.decode()
    other = Client().get(_url(verify, hitId="MTHITV", assignmentId="ASG8", workerId="W2", turkSubmitTo=SANDBOX))
    assert other.status_code == 200 and 'name="verdict"' in other.content.decode()
    assert list(Assignment.objects.filter(hit=verify).values_list("worker__username", flat=True)) == ["mturk-W2"]

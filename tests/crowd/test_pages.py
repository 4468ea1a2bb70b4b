"""The annotator's pages end to end through Django's test client: home, form, submit, return, skip."""
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, make_user
from units.crowd.models import Annotation, Assignment, Skip
from units.crowd.selectors import hit_exemplars, hit_pictures

pytestmark = pytest.mark.django_db


@pytest.fixture
def annie(client, annotator):
    client.force_login(annotator)
    return client


def start(client):
    response = client.post(reverse("crowd:next"))
    assert response.status_code == 302
    return response


def test_opening_the_start_address_directly_goes_home_and_claims_nothing(annie, annotator, hits):
    response = annie.get(reverse("crowd:next"))
    assert response.status_code == 302 and response["Location"] == reverse("crowd:home")
    assert not Assignment.objects.filter(worker=annotator).exists()


def test_start_working_opens_the_form_of_the_claimed_assignment(annie, annotator, hits):
    response = start(annie)
    a = Assignment.objects.get(worker=annotator)
    assert response["Location"] == reverse("crowd:work", args=[a.pk])
    page = annie.get(response["Location"]).content.decode()
    assert page.count('name="non_fitting"') == 6
    assert 'id="answer-form"' in page and "crowd/label.js" in page
    for ex in hit_pictures(a.hit):
        assert f'src="{ex.picture_url}"' in page and f'value="{ex.pk}"' in page
    for ex in hit_exemplars(a.hit):  # neither the file paths nor the exemplar ids reach the page
        assert ex.picture not in page and f'name="non_fitting" value="{ex.pk}"' not in page


def test_the_plain_view_shows_the_unhighlighted_images(annie, annotator, hits):
    start(annie)
    a = Assignment.objects.get(worker=annotator)
    a.hit.unit.exemplars.update(plain="plain.png")
    page = annie.get(reverse("crowd:work", args=[a.pk]) + "?view=plain").content.decode()
    for ex in hit_pictures(a.hit):
        assert f'src="{ex.plain_url}"' in page and ex.plain_url == ex.picture_url + "/plain"
    assert "plain.png" not in page


def test_submitting_the_form_stores_the_answer_and_opens_the_next_hit(annie, annotator, hits):
    start(annie)
    a = Assignment.objects.get(worker=annotator)
    marked = hit_pictures(a.hit)[1]
    response = annie.post(reverse("crowd:work", args=[a.pk]), {
        "word": "seven", "category": "object", "non_fitting": [marked.pk], "confidence": "4", "description": "sevens",
    })
    annotation = Annotation.objects.get(assignment=a)
    assert (annotation.word, annotation.category, annotation.confidence) == ("seven", "object", 4)
    assert list(annotation.non_fitting.values_list("pk", flat=True)) == [marked.exemplar_id]
    nxt = Assignment.objects.get(worker=annotator, status="accepted")
    # ?done= tells the page's script to drop the submitted HIT's draft kept in the browser.
    assert response["Location"] == reverse("crowd:work", args=[nxt.pk]) + f"?done={a.hit_id}"


def test_an_invalid_form_shows_the_errors_and_keeps_the_marks(annie, annotator, hits):
    start(annie)
    a = Assignment.objects.get(worker=annotator)
    marked = hit_pictures(a.hit)[2].pk
    response = annie.post(reverse("crowd:work", args=[a.pk]), {"word": "", "non_fitting": [marked], "confidence": "3"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Choose a category" in page
    assert re.search(rf'value="{marked}"\s+checked', page)
    assert not Annotation.objects.exists()


def test_a_foreign_image_id_in_the_form_is_refused(annie, annotator, hits):
    start(annie)
    a = Assignment.objects.get(worker=annotator)
    response = annie.post(reverse("crowd:work", args=[a.pk]),
                          {"word": "x", "category": "object", "non_fitting": ["99999"], "confidence": "3"})
    assert "not part of this HIT" in response.content.decode()
    assert not Annotation.objects.exists()


def test_another_annotators_assignment_page_is_not_found(client, annotator, other_annotator, hits):
    client.force_login(annotator)
    start(client)
    a = Assignment.objects.get(worker=annotator)
    client.force_login(other_annotator)
    refused = client.get(reverse("crowd:work", args=[a.pk]))
    assert refused.status_code == 404  # like an id that does not exist: ids reveal nothing
    assert client.post(reverse("crowd:work", args=[a.pk]), {"word": "x", "category": "object"}).status_code == 404
    assert not Annotation.objects.exists()


def test_return_and_skip_buttons(annie, annotator, hits):
    start(annie)
    a = Assignment.objects.get(worker=annotator)
    returned = annie.post(reverse("crowd:return", args=[a.pk]))
    a.refresh_from_db()
    assert a.status == "returned"
    # Return and skip lead to the same place: the next HIT.
    b = Assignment.objects.get(worker=annotator, status="accepted")
    assert returned["Location"] == reverse("crowd:work", args=[b.pk]) + f"?done={a.hit_id}"
    response = annie.post(reverse("crowd:skip", args=[b.pk]))
    assert Skip.objects.filter(worker=annotator, hit=b.hit).exists()
    c = Assignment.objects.get(worker=annotator, status="accepted")
    assert response["Location"] == reverse("crowd:work", args=[c.pk]) + f"?done={b.hit_id}"


def test_home_shows_counts_and_the_start_button(annie, annotator, hits):
    page = annie.get(reverse("crowd:home")).content.decode()
    assert 'id="start-working"' in page
    assert re.search(r'id="count-submitted">0<', page)


def test_an_unqualified_annotator_is_sent_to_the_qualification_and_told_when_there_is_no_gold(client, hits):
    client.force_login(make_user())
    page = client.get(reverse("crowd:home")).content.decode()
    assert 'id="start-working"' not in page
    assert "no test yet (no gold units)" in page.split('id="qualification-')[1]
    response = client.post(reverse("crowd:next"), follow=True)
    assert "qualification" in response.content.decode()
    test_page = reverse("crowd:qualification_test", args=[hits[0].batch.project_id])
    assert "no gold units yet" in client.get(test_page).content.decode()


def test_the_qualification_page_grades_the_test(client, job, hits):
    from units.dissection.models import Unit

    for unit in Unit.objects.filter(layer__job=job):
        unit.is_gold, unit.gold_word, unit.gold_category = True, str(unit.index), "object"
        unit.save()
    user = make_user()
    client.force_login(user)
    test_page = reverse("crowd:qualification_test", args=[job.project_id])
    assert test_page in client.get(reverse("crowd:qualification")).content.decode()  # listed, with its link
    page = client.get(test_page).content.decode()
    ids = [int(x) for x in re.findall(r'name="word_(\d+)"', page)]
    assert ids
    data = {}
    for uid in ids:
        data[f"word_{uid}"] = str(Unit.objects.get(pk=uid).index)
        data[f"category_{uid}"] = "object"
    response = client.post(test_page, data, follow=True)
    assert "You passed" in response.content.decode()
    assert 'id="start-working"' in response.content.decode()


def test_the_instructions_page_has_worked_examples(annie):
    page = annie.get(reverse("crowd:instructions")).content.decode()
    assert "Worked examples" in page and "no clear concept" in page


def test_login_logout_and_password_change(client, annotator):
    assert client.post(reverse("login"), {"username": "annie", "password": PASSWORD}).status_code == 302
    response = client.post(reverse("password_change"), {
        "old_password": PASSWORD, "new_password1": "a-new-long-secret-42", "new_password2": "a-new-long-secret-42"})
    assert response["Location"] == reverse("password_change_done")
    client.post(reverse("logout"))
    assert client.get(reverse("crowd:home")).status_code == 302
    assert client.login(username="annie", password="a-new-long-secret-42")


def test_home_lists_the_batches_with_work_left_reward_and_time_before_starting(annie, annotator, other_annotator, hits):
    from units.crowd.services import annotation_submit, assignment_claim

    n = len(hits)
    page = annie.get(reverse("crowd:home")).content.decode()
    table = page.split('id="batches"')[1].split("</table>")[0]
    assert f"<td>{n}</td><td>$0.05</td>" in table and "up to 10 min" in table  # no times yet: the time allowed
    for name in ("otto2", "otto3", "otto4"):  # three other annotators' times: enough for a median
        other = make_user(name, qualified=True) if name != "otto2" else other_annotator
        a = assignment_claim(worker=other)
        Assignment.objects.filter(pk=a.pk).update(accepted_at=timezone.now() - timedelta(seconds=42))
        annotation_submit(assignment_id=a.pk, worker=other, word="x", category="object")
    table = annie.get(reverse("crowd:home")).content.decode().split('id="batches"')[1].split("</table>")[0]
    assert "about 42 s (other annotators' median)" in table


def test_the_work_page_counts_the_sitting_done_earned_and_the_hits_still_open(annie, annotator, hits):
    n = len(hits)
    response = start(annie)
    page = annie.get(response["Location"]).content.decode()
    assert '<strong id="sitting-done">0</strong> done · $0 on approval' in page
    assert f'<strong id="sitting-left">{n - 1}</strong> more HITs open to you' in page
    a = Assignment.objects.get(worker=annotator, status="accepted")
    response = annie.post(reverse("crowd:work", args=[a.pk]), {"word": "seven", "category": "object",
                                                            "confidence": "3"})
    page = annie.get(response["Location"]).content.decode()
    assert '<strong id="sitting-done">1</strong> done · $0.05 on approval' in page
    assert f'<strong id="sitting-left">{n - 2}</strong> more HITs open to you' in page


def test_a_batchs_time_per_hit_ignores_ones_own_times_and_a_single_other(annie, annotator, other_annotator, hits):
    from units.crowd.services import annotation_submit, assignment_claim

    for worker, seconds in ((annotator, 1), (annotator, 1), (annotator, 1), (other_annotator, 300)):
        a = assignment_claim(worker=worker)
        Assignment.objects.filter(pk=a.pk).update(accepted_at=timezone.now() - timedelta(seconds=seconds))
        annotation_submit(assignment_id=a.pk, worker=worker, word="x", category="object")
    table = annie.get(reverse("crowd:home")).content.decode().split('id="batches"')[1].split("</table>")[0]
    assert "about 1 s" not in table and "up to 10 min" in table


def test_a_skipped_hit_is_listed_as_skipped_not_returned(annie, annotator, hits):
    from units.crowd.services import assignment_claim, hit_skip

    skipped = assignment_claim(worker=annotator)
    hit_skip(assignment_id=skipped.pk, worker=annotator)
    page = annie.get(reverse("crowd:home")).content.decode()
    recent = page.split("Recent work")[1]
    row = recent.split(f"</td><td>{skipped.hit_id}</td>")[1].split("</tr>")[0]  # after the project's column
    assert "Skipped" in row and "Returned" not in row


def test_the_sitting_counts_hits_open_in_every_batch(annie, annotator, hits):
    from tests.factories import make_hits, make_job

    n = len(hits)
    make_hits(make_job(layers={"conv3": n}, exemplars_per_unit=4))  # a second batch, another job's units
    response = start(annie)
    page = annie.get(response["Location"]).content.decode()
    assert f'<strong id="sitting-left">{2 * n - 1}</strong> more HITs open to you' in page

"""User text is shown back escaped, and forms and the session API enforce CSRF."""
import pytest
from django.test import Client
from django.urls import reverse

from units.crowd.models import Annotation
from units.crowd.services import annotation_submit, assignment_claim

pytestmark = pytest.mark.django_db
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_a_description_with_markup_is_shown_escaped_to_requesters(client, annotator, requester, hits):
    a = assignment_claim(worker=annotator)
    annotation_submit(assignment_id=a.pk, worker=annotator, word="seven", category="object", description=EVIL)
    client.force_login(requester)
    for url in (reverse("crowd:review_hit", args=[a.hit_id]), reverse("crowd:review_list")):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page or "&lt;script&gt;" in page


def test_a_word_with_markup_stored_by_other_means_is_shown_escaped_everywhere(client, annotator, requester, hits):
    # The form refuses "<" in words, but rows can also come from imports: templates must escape anyway.
    a = assignment_claim(worker=annotator)
    annotation_submit(assignment_id=a.pk, worker=annotator, word="seven", category="object")
    Annotation.objects.filter(assignment=a).update(word=EVIL)
    client.force_login(annotator)
    home = client.get(reverse("crowd:home")).content.decode()
    assert "<script>alert" not in home and "&lt;script&gt;" in home
    client.force_login(requester)
    page = client.get(reverse("crowd:review_hit", args=[a.hit_id])).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_a_block_reason_with_markup_is_escaped_on_the_annotators_page(client, annotator, requester):
    client.force_login(requester)
    client.post(reverse("crowd:annotator_action", args=[annotator.pk]), {"action": "block", "reason": EVIL})
    page = client.get(reverse("crowd:annotators")).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("name", ["next", "work", "return", "skip", "decide", "signup", "login"])
def test_forms_refuse_a_post_without_the_csrf_token(annotator, requester, hits, name):
    a = assignment_claim(worker=annotator)
    client = Client(enforce_csrf_checks=True)
    user = requester if name == "decide" else annotator
    if name not in ("signup", "login"):
        client.force_login(user)
    url = {
        "next": reverse("crowd:next"), "work": reverse("crowd:work", args=[a.pk]),
        "return": reverse("crowd:return", args=[a.pk]), "skip": reverse("crowd:skip", args=[a.pk]),
        "decide": reverse("crowd:review_decide"), "signup": reverse("signup"), "login": reverse("login"),
    }[name]
    response = client.post(url, {"word": "seven", "category": "object", "confidence": "3", "action": "approve",
                                 "assignment_ids": [a.pk], "username": "annie", "password": "x"})
    assert response.status_code == 403
    assert not Annotation.objects.exists()


def test_the_form_accepts_the_post_with_its_csrf_token(annotator, hits):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    a = assignment_claim(worker=annotator)
    client.get(reverse("crowd:work", args=[a.pk]))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("crowd:work", args=[a.pk]),
                           {"word": "seven", "category": "object", "confidence": "3", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Annotation.objects.count() == 1


def test_the_session_authenticated_api_enforces_csrf_too(annotator, hits):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post("/api/assignments/next/").status_code == 403

"""Sign-up (open, invite code, closed), requesters' settings pages, and create_annotators."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from units.crowd.annotators import annotator_signup
from units.crowd.errors import CrowdError, InvalidAnswer
from units.crowd.models import AnnotatorProfile, CrowdSettings, InviteCode, Qualification

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW = {"username": "newbie", "email": "", "password1": "a-long-new-secret-7", "password2": "a-long-new-secret-7"}


def set_mode(mode):
    CrowdSettings.objects.update_or_create(pk=1, defaults={"signup_mode": mode})


def test_open_sign_up_creates_an_unqualified_annotator_and_signs_them_in(client):
    response = client.post(reverse("signup"), NEW)
    assert response["Location"] == reverse("crowd:home")
    user = User.objects.get(username="newbie")
    assert AnnotatorProfile.objects.filter(user=user).exists() and not Qualification.objects.filter(user=user).exists()
    assert client.get(reverse("crowd:home")).status_code == 200


def test_sign_up_refuses_a_taken_name_and_a_weak_password(client, annotator):
    page = client.post(reverse("signup"), {**NEW, "username": "ANNIE"}).content.decode()
    assert "taken" in page
    page = client.post(reverse("signup"), {**NEW, "password1": "123", "password2": "123"}).content.decode()
    assert "too short" in page
    assert not User.objects.filter(username="newbie").exists()


@pytest.mark.parametrize("name", ["two words", "<b>bold</b>", "semi;colon"])
def test_sign_up_refuses_a_user_name_with_characters_outside_letters_digits_and_at_dot_plus_dash(client, name):
    page = client.post(reverse("signup"), {**NEW, "username": name}).content.decode()
    assert "Enter a valid username" in page
    assert not User.objects.exists()


def test_invite_mode_needs_a_valid_code_and_uses_it_up(client, requester):
    set_mode("invite")
    code = InviteCode.objects.create(code="lab-2026", max_uses=1)
    page = client.post(reverse("signup"), {**NEW, "invite_code": "nope"}).content.decode()
    assert "not valid" in page
    assert client.post(reverse("signup"), {**NEW, "invite_code": "lab-2026"}).status_code == 302
    code.refresh_from_db()
    assert code.uses == 1
    with pytest.raises(InvalidAnswer, match="invite"):
        annotator_signup(username="second", password="a-long-new-secret-8", invite_code="lab-2026")


def test_closed_sign_up_says_so(client):
    set_mode("closed")
    assert "Sign-up is closed" in client.get(reverse("signup")).content.decode()
    with pytest.raises(CrowdError, match="closed"):
        annotator_signup(username="x", password="a-long-new-secret-9")


def test_a_requester_switches_sign_up_to_invite_codes_and_creates_one(client, requester):
    client.force_login(requester)
    data = {"s-signup_mode": "invite", "s-gold_rate": 0.1}
    assert client.post(reverse("crowd:settings"), data).status_code == 302
    assert CrowdSettings.load().signup_mode == "invite"
    client.post(reverse("crowd:invite_create"), {"i-max_uses": 3, "i-note": "lab"})
    code = InviteCode.objects.get()
    assert (code.max_uses, code.note) == (3, "lab")
    assert code.code in client.get(reverse("crowd:settings")).content.decode()


def test_create_annotators_creates_prints_and_optionally_qualifies_for_named_projects(db):
    from tests.factories import make_project

    _, beta = make_project("alpha"), make_project("beta")
    make_project("gamma")
    out = io.StringIO()
    call_command("create_annotators", count=3, prefix="lab", password="lab-password-1",
                 qualified=["alpha", str(beta.pk)], stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1:4] == [f"lab{i}\tlab-password-1\talpha, beta" for i in (1, 2, 3)]
    for i in (1, 2, 3):  # for the two projects named, not the third
        assert sorted(Qualification.objects.filter(user__username=f"lab{i}").values_list("project__name", flat=True)
                      ) == ["alpha", "beta"]
    assert User.objects.get(username="lab2").check_password("lab-password-1")
    with pytest.raises(CommandError, match="No project named 'delta'"):
        call_command("create_annotators", count=1, prefix="x", password="lab-password-1", qualified=["delta"])


def test_create_annotators_skips_names_that_are_taken(db):
    call_command("create_annotators", count=1, prefix="lab", password="lab-password-1", stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("create_annotators", count=2, prefix="lab", password="lab-password-1", stdout=out, stderr=err)
    assert "skipped lab1" in err.getvalue()
    assert "lab2\tlab-password-1\t-" in out.getvalue() and "1 annotator account(s) created" in out.getvalue()
    assert User.objects.filter(username__startswith="lab").count() == 2


def test_create_annotators_refuses_bad_arguments(db):
    with pytest.raises(CommandError, match="--count"):
        call_command("create_annotators", count=0, password="lab-password-1")
    with pytest.raises(CommandError, match="--password"):
        call_command("create_annotators", count=1, password="short")

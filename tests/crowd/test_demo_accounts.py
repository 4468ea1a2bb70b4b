"""The demo's accounts: well-known passwords on a development machine only."""
import io
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate_site.management.commands.demo import ADMIN, ANNOTATOR_PASSWORD, Command

pytestmark = pytest.mark.django_db


def make_accounts(**options) -> str:
    out = io.StringIO()
    command = Command(stdout=out)
    command.users(**options)
    return out.getvalue()


def test_with_debug_on_the_readme_passwords_work(settings):
    settings.DEBUG = True
    make_accounts()
    assert authenticate(username="admin", password=ADMIN[1]).is_superuser
    assert authenticate(username="annotator1", password=ANNOTATOR_PASSWORD) is not None


def test_with_debug_off_the_admin_gets_a_generated_password_printed_once(settings):
    settings.DEBUG = False
    out = make_accounts()
    assert authenticate(username="admin", password=ADMIN[1]) is None
    password = re.search(r"Created admin 'admin' with password '([^']+)'", out).group(1)
    assert authenticate(username="admin", password=password).is_superuser
    assert authenticate(username="annotator1", password=ANNOTATOR_PASSWORD) is None


def test_with_debug_off_an_admin_left_with_the_well_known_password_gets_a_new_one(settings):
    settings.DEBUG = True
    make_accounts()
    settings.DEBUG = False
    out = make_accounts()
    assert authenticate(username="admin", password=ADMIN[1]) is None
    assert authenticate(username="annotator2", password=ANNOTATOR_PASSWORD) is None
    password = re.search(r"Admin 'admin': password set to '([^']+)'", out).group(1)
    assert authenticate(username="admin", password=password) is not None


def test_the_admin_password_given_is_used_and_the_well_known_one_refused(settings):
    settings.DEBUG = False
    make_accounts(admin_password="a-long-lab-password-42")
    assert authenticate(username="admin", password="a-long-lab-password-42").is_superuser
    with pytest.raises(CommandError, match="well-known"):
        call_command("demo", "--admin-password", ADMIN[1])
    with pytest.raises(CommandError, match="too short"):
        call_command("demo", "--admin-password", "abc")
    assert authenticate(username="admin", password="a-long-lab-password-42") is not None
    assert get_user_model().objects.filter(is_superuser=True).count() == 1

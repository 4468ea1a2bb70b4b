"""Attack: a client's address comes from a trusted place only. Made-up X-Forwarded-For headers neither
escape the per-address limits nor, behind the TLS proxy, let one client lock out another; page logins
have a per-address limit against password spraying. Direct and proxied deployments."""
import json
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db
PROXY = "10.0.0.1"
CLIENT_X, CLIENT_Y = "203.0.113.5", "198.51.100.7"


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    return settings.AXES_FAILURE_LIMIT


@pytest.fixture
def direct(settings):
    """Nothing in front of the site: the default settings (TRUSTED_PROXIES unset)."""
    return settings


@pytest.fixture
def proxied(settings):
    """Behind one TLS proxy (compose): TRUSTED_PROXIES=1; every request arrives from the proxy."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def via_proxy(client_address: str, forged: str = "") -> dict:
    """What the proxy sends on: the client's own header (anything), then the address it saw."""
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{forged}, {client_address}" if forged else client_address}


def token(client, username, password, **meta):
    return client.post("/api/auth/token/", {"username": username, "password": password}, format="json", **meta)


def test_direct_made_up_forwarded_for_headers_do_not_escape_the_token_limit(db, direct):
    client = APIClient()
    statuses = [token(client, "nobody", "x", REMOTE_ADDR=CLIENT_X, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
                for i in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429


def test_direct_made_up_forwarded_for_headers_do_not_escape_the_login_lockout(annotator, axes_on, direct):
    client = Client()
    for i in range(axes_on):
        client.post(reverse("login"), {"username": "annie", "password": "wrong"},
                    REMOTE_ADDR=CLIENT_X, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    right = client.post(reverse("login"), {"username": "annie", "password": PASSWORD},
                        REMOTE_ADDR=CLIENT_X, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert right.status_code == 429


def test_proxied_one_client_cannot_lock_another_out(annotator, axes_on, proxied):
    attacker = Client()
    for _ in range(axes_on + 2):
        attacker.post(reverse("login"), {"username": "annie", "password": "wrong"}, **via_proxy(CLIENT_X))
    assert attacker.post(reverse("login"), {"username": "annie", "password": PASSWORD},
                         **via_proxy(CLIENT_X)).status_code == 429
    annie = Client()
    assert annie.post(reverse("login"), {"username": "annie", "password": PASSWORD},
                      **via_proxy(CLIENT_Y)).status_code == 302
    assert token(APIClient(), "annie", PASSWORD, **via_proxy(CLIENT_Y)).status_code == 200


def test_proxied_a_forged_left_part_is_still_the_same_client(db, proxied):
    client = APIClient()
    statuses = [token(client, "nobody", "x", **via_proxy(CLIENT_X, forged=f"192.0.2.{i}")).status_code
                for i in range(11)]
    assert statuses[10] == 429
    # a different client behind the same proxy keeps its own allowance
    assert token(client, "nobody", "x", **via_proxy(CLIENT_Y)).status_code == 400


def test_page_logins_have_a_per_address_limit_against_password_spraying(axes_on, settings, direct):
    limit = settings.LOGIN_FAILURES_PER_ADDRESS
    names = [f"user{i}" for i in range(limit + 2)]
    for name in names:
        make_user(name)
    sprayer = Client()
    statuses = [
        sprayer.post(reverse("login"), {"username": n, "password": "Winter2026!"}, REMOTE_ADDR=CLIENT_X).status_code
        for n in names
    ]
    assert statuses[: limit - 1] == [200] * (limit - 1) and set(statuses[limit - 1:]) == {429}
    # the right password from that address waits too; another address is not affected
    assert sprayer.post(reverse("login"), {"username": names[0], "password": PASSWORD},
                        REMOTE_ADDR=CLIENT_X).status_code == 429
    assert Client().post(reverse("login"), {"username": names[0], "password": PASSWORD},
                         REMOTE_ADDR=CLIENT_Y).status_code == 302


def test_proxied_spraying_from_one_client_leaves_the_others_alone(axes_on, settings, proxied):
    names = [f"user{i}" for i in range(settings.LOGIN_FAILURES_PER_ADDRESS + 1)]
    for name in names:
        make_user(name)
    for name in names:
        Client().post(reverse("login"), {"username": name, "password": "wrong"}, **via_proxy(CLIENT_X))
    assert Client().post(reverse("login"), {"username": names[0], "password": PASSWORD},
                         **via_proxy(CLIENT_Y)).status_code == 302


def test_one_setting_drives_drf_and_axes(tmp_path):
    code = ("import django, json; django.setup(); from django.conf import settings; "
            "print(json.dumps([settings.REST_FRAMEWORK['NUM_PROXIES'], settings.AXES_CLIENT_IP_CALLABLE]))")
    for env, expected in (({}, 0), ({"TRUSTED_PROXIES": "2"}, 2)):
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 40, "UNITCROWD_VAR_DIR": str(tmp_path),
                 "DJANGO_SETTINGS_MODULE": "annotate_site.settings", "UNITCROWD_ENV_FILE": "", **env})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1]) == [expected, "annotate_site.throttling.client_ip"]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 40, "UNITCROWD_VAR_DIR": str(tmp_path),
                              "DJANGO_SETTINGS_MODULE": "annotate_site.settings", "UNITCROWD_ENV_FILE": "",
                              "TRUSTED_PROXIES": "-1"})
    assert bad.returncode != 0 and "TRUSTED_PROXIES" in bad.stderr


def test_compose_trusts_exactly_its_one_tls_proxy():
    from tests.test_deploy_check import compose_environment

    env = compose_environment()
    assert env["TRUSTED_PROXIES"] == "1" and env["HTTPS"] == "1"

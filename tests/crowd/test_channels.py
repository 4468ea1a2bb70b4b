"""Crowd channels per batch (site, MTurk sandbox, MTurk live, Prolific): publishing checks, cost and budget
cap, credentials kept secret, the channel shown on the pages, and outside batches kept from site annotators."""
from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.factories import PASSWORD, make_job, make_project, make_user
from units.crowd.channels import (
    assignment_fee, batch_cost, channel_credentials, channel_settings_update, project_spending, secret_decrypt,
)
from units.crowd.errors import PublishError
from units.crowd.models import Channel, ChannelSettings, Hit, HitBatch
from units.crowd.publishing import PublishSettings, hit_publish, publishable_units
from units.crowd.services import assignment_claim
from units.projects.models import Activity

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "prolific-token-0123456789abcdef"


@pytest.fixture
def public_site(settings):
    settings.SITE_URL = "https://crowd.example.org"
    return settings


def _mturk_credentials(project, owner, **extra):
    return channel_settings_update(project=project, by=owner, mturk_access_key_id="AKIAEXAMPLE",
                                   mturk_secret=SECRET, **extra)


# --- cost -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reward, per_hit, fee", [
    ("0.05", 3, "0.01"),   # 20% of 5 cents is 1 cent
    ("0.02", 3, "0.01"),   # 0.4 cent, raised to MTurk's minimum of 1 cent
    ("0.13", 3, "0.03"),   # 2.6 cents, rounded half up
    ("0.50", 9, "0.10"),   # 20% below 10 assignments
    ("0.50", 10, "0.20"),  # 40% from 10 assignments
    ("1.25", 12, "0.50"),
])
def test_the_mturk_fee_follows_the_price_list(reward, per_hit, fee):
    assert assignment_fee(Channel.MTURK_LIVE, Decimal(reward), per_hit) == Decimal(fee)
    assert assignment_fee(Channel.PROLIFIC, Decimal(reward), per_hit) == Decimal("0.00")


@pytest.mark.parametrize("rate, fee", [(0.428, "2.57"), (0.333, "2.00")])
def test_prolifics_fee_is_its_share_of_the_rewards(settings, rate, fee):
    settings.PROLIFIC_FEE_RATE = rate
    cost = batch_cost(channel=Channel.PROLIFIC, reward=Decimal("0.50"), assignments_per_hit=3, hits=4)
    # 12 assignments x $0.50 = $6.00 of rewards; 42.8% of it is $2.568, 33.3% is $1.998 (half up to the cent)
    assert (cost.rewards, cost.fees, cost.total) == (Decimal("6.00"), Decimal(fee), Decimal("6.00") + Decimal(fee))


def test_the_budget_cap_counts_prolifics_fee(lab, public_site):
    owner, project, job = lab
    channel_settings_update(project=project, by=owner, prolific_token=TOKEN, budget_cap=Decimal("8.56"))
    prolific = PublishSettings(channel=Channel.PROLIFIC, reward="0.50")
    with pytest.raises(PublishError, match=r"up to \$8.57 .* \$8.56 left"):  # $6.00 + 42.8% = $8.57
        hit_publish(layers=job.layer_set.all(), settings=prolific, created_by=owner)
    assert not HitBatch.objects.exists()
    channel_settings_update(project=project, by=owner, budget_cap=Decimal("8.57"))
    hit_publish(layers=job.layer_set.all(), settings=prolific, created_by=owner)
    assert project_spending(project.pk) == Decimal("8.57")


def test_a_batch_costs_reward_and_fee_for_every_assignment():
    cost = batch_cost(channel=Channel.MTURK_LIVE, reward=Decimal("0.50"), assignments_per_hit=10, hits=7)
    # 70 assignments x ($0.50 + 40% of it)
    assert (cost.assignments, cost.rewards, cost.fees, cost.total) == (70, Decimal("35.00"), Decimal("14.00"),
                                                                       Decimal("49.00"))


# --- publishing ----------------------------------------------------------------------------------

def test_publishing_to_mturk_needs_credentials_and_an_https_site(lab, settings):
    owner, project, job = lab
    settings.MTURK_AWS_ACCESS_KEY_ID = settings.MTURK_AWS_SECRET_ACCESS_KEY = ""
    mturk = PublishSettings(channel=Channel.MTURK_SANDBOX)
    with pytest.raises(PublishError, match="No credentials"):
        hit_publish(layers=job.layer_set.all(), settings=mturk, created_by=owner)
    _mturk_credentials(project, owner)
    settings.SITE_URL = "http://127.0.0.1:8000"
    with pytest.raises(PublishError, match="https://"):
        hit_publish(layers=job.layer_set.all(), settings=mturk, created_by=owner)
    assert not Hit.objects.exists() and not HitBatch.objects.exists()
    settings.SITE_URL = "https://crowd.example.org"
    batch = hit_publish(layers=job.layer_set.all(), settings=mturk, created_by=owner)
    assert batch.channel == Channel.MTURK_SANDBOX and batch.report.created == 4


def test_an_unknown_channel_is_refused(lab):
    owner, _, job = lab
    with pytest.raises(PublishError, match="Unknown crowd channel"):
        hit_publish(layers=job.layer_set.all(), settings=PublishSettings(channel="mturk"), created_by=owner)


def test_site_annotators_are_never_offered_an_outside_crowds_hits(lab, public_site):
    owner, project, job = lab
    _mturk_credentials(project, owner)
    hit_publish(layers=job.layer_set.all(), settings=PublishSettings(channel=Channel.MTURK_LIVE), created_by=owner)
    annotator = make_user("ann", qualified=project)
    assert assignment_claim(worker=annotator) is None
    site_job = make_job(project=project, layers={"conv4": 1}, exemplars_per_unit=2)
    site = hit_publish(layers=site_job.layer_set.all(), created_by=owner)
    assert assignment_claim(worker=annotator).hit.batch == site


def test_the_budget_cap_refuses_a_batch_that_would_pass_it_and_leaves_no_hit(lab, public_site):
    owner, project, job = lab
    # 4 HITs x 3 assignments x ($0.50 + $0.10 fee) = $7.20
    _mturk_credentials(project, owner, budget_cap=Decimal("7.19"))
    live = PublishSettings(channel=Channel.MTURK_LIVE, reward="0.50")
    with pytest.raises(PublishError, match=r"up to \$7.20 .* \$7.19 left"):
        hit_publish(layers=job.layer_set.all(), settings=live, created_by=owner)
    assert not Hit.objects.exists() and not HitBatch.objects.exists()
    _mturk_credentials(project, owner, budget_cap=Decimal("7.20"))
    hit_publish(layers=job.layer_set.all(), settings=live, created_by=owner)
    assert project_spending(project.pk) == Decimal("7.20")
    # The sandbox spends no money: the cap does not count it.
    more = make_job(project=project, layers={"conv4": 2}, exemplars_per_unit=2)
    sandbox = hit_publish(layers=more.layer_set.all(), settings=PublishSettings(channel=Channel.MTURK_SANDBOX),
                          created_by=owner)
    assert sandbox.report.created == 2 and project_spending(project.pk) == Decimal("7.20")
    with pytest.raises(PublishError, match=r"\$0.00 left"):
        hit_publish(layers=make_job(project=project, layers={"conv5": 1}, exemplars_per_unit=2).layer_set.all(),
                    settings=live, created_by=owner)


def test_verify_batches_go_to_outside_crowds_and_pools_stay_on_the_site(lab, public_site):
    from django.db.models import F

    from units.crowd.publishing import POOL_SITE_ONLY
    from units.crowd.verify import hit_publish_verify
    from units.dissection.models import Unit
    from units.projects.models import Pool

    owner, project, job = lab
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # every unit has an IoU label
    pool = Pool.objects.create(project=project, name="lab members")
    _mturk_credentials(project, owner, budget_cap=Decimal("2.00"))
    settings = PublishSettings.for_verify(channel=Channel.MTURK_LIVE, reward="0.10")
    with pytest.raises(PublishError) as refused:
        hit_publish_verify(layers=job.layer_set.all(), created_by=owner, pool=pool, settings=settings)
    assert str(refused.value) == POOL_SITE_ONLY  # a pool holds site annotators
    # 4 HITs x 3 assignments x ($0.10 + $0.02 fee) = $1.44, within the cap of $2.00; twice is not.
    batch = hit_publish_verify(layers=job.layer_set.all(), created_by=owner, sources=["iou"], settings=settings)
    assert (batch.kind, batch.channel, batch.hits.count()) == ("verify", Channel.MTURK_LIVE, 4)
    assert project_spending(project.pk) == Decimal("1.44")
    more = make_job(project=project, layers={"conv4": 4}, exemplars_per_unit=2)
    Unit.objects.filter(layer__job=more).update(iou_score=F("iou_score") + 0.05)
    with pytest.raises(PublishError, match=r"up to \$1.44 .* \$0.56 left"):
        hit_publish_verify(layers=more.layer_set.all(), created_by=owner, sources=["iou"], settings=settings)
    assert HitBatch.objects.count() == 1


def test_publishable_units_counts_what_publishing_creates(lab):
    owner, _, job = lab
    expected = publishable_units(job.layer_set.all())
    assert expected == hit_publish(layers=job.layer_set.all(), created_by=owner).report.created == 4
    assert publishable_units(job.layer_set.all()) == 0


# --- the publish page, the API, the command -------------------------------------------------------

def _page_data(job, **extra):
    return {"layers": [layer.pk for layer in job.layer_set.all()], "assignments_per_hit": 3, "reward": "0.50",
            "lifetime_hours": 1, "assignment_minutes": 5, "auto_approval_hours": 1, "exemplars_shown": 2,
            "sentinels": 0, "skip_dead": "on", **extra}


@pytest.fixture
def mturk_stub(monkeypatch):
    """The MTurk client the pages make, with botocore's Stubber in front of it (no network)."""
    import boto3
    from botocore.stub import Stubber

    from units.crowd import external_work
    from units.crowd.mturk import ENDPOINTS

    client = boto3.client("mturk", region_name="us-east-1", endpoint_url=ENDPOINTS[Channel.MTURK_LIVE],
                          aws_access_key_id="AKIATEST", aws_secret_access_key="not-a-secret")
    monkeypatch.setattr(external_work, "mturk_client", lambda project_id, channel: client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_the_publish_page_shows_the_cost_of_a_real_money_batch_before_publishing(client, lab, public_site,
                                                                                  mturk_stub):
    owner, project, job = lab
    mturk_stub.add_response("get_account_balance", {"AvailableBalance": "42.50"}, {})
    _mturk_credentials(project, owner, budget_cap=Decimal("100"))
    client.login(username=owner.username, password=PASSWORD)
    first = client.post(reverse("publish"), _page_data(job, channel=Channel.MTURK_LIVE))
    assert first.status_code == 200
    text = first.content.decode()
    assert "4 HITs would cost up to $7.20 (12 assignments: $6.00 rewards + $1.20 fees)" in text
    assert "$100.00 left of the budget cap" in text
    assert "Balance on Mechanical Turk LIVE (real money): $42.50 available." in text
    assert not Hit.objects.exists()
    second = client.post(reverse("publish"), _page_data(job, channel=Channel.MTURK_LIVE, confirm_cost="on"))
    assert second.status_code == 302
    assert HitBatch.objects.get().channel == Channel.MTURK_LIVE


def test_a_balance_that_cannot_be_read_is_a_clear_line_not_an_error_page(client, lab, public_site, mturk_stub):
    owner, project, job = lab
    _mturk_credentials(project, owner)
    client.login(username=owner.username, password=PASSWORD)
    mturk_stub.add_client_error("get_account_balance", service_error_code="ServiceFault",
                                service_message="Try again later")
    response = client.post(reverse("publish"), _page_data(job, channel=Channel.MTURK_LIVE))
    assert response.status_code == 200
    assert ("The account balance could not be read: Mechanical Turk refused get_account_balance (ServiceFault): "
            "Try again later") in response.content.decode()


def test_the_publish_page_shows_the_prolific_workspace_balance(client, lab, public_site, settings):
    from tests.crowd.test_prolific import FakeProlific

    fake = FakeProlific()
    settings.PROLIFIC_API_URL = fake.url
    fake.balances["WS1"] = 12345
    owner, project, job = lab
    client.login(username=owner.username, password=PASSWORD)
    saved = client.post(reverse("crowd:channels", args=[project.pk]), {
        "prolific_token": "prolific-test-token", "prolific_workspace_id": "WS1", "prolific_hits_per_participant": 5})
    assert saved.status_code == 302
    try:
        text = client.post(reverse("publish"), _page_data(job, channel=Channel.PROLIFIC)).content.decode()
        assert "$6.00 rewards + $2.57 fees" in text and "Prolific workspace balance: 123.45 GBP available." in text
        ChannelSettings.objects.filter(project=project).update(prolific_workspace_id="NOSUCH")
        text = client.post(reverse("publish"), _page_data(job, channel=Channel.PROLIFIC)).content.decode()
        assert "The account balance could not be read: Prolific refused GET workspaces/NOSUCH/balance/ (404)" in text
    finally:
        fake.server.shutdown()
    bad = client.post(reverse("crowd:channels", args=[project.pk]), {"prolific_workspace_id": "../x",
                                                                     "prolific_hits_per_participant": 5})
    assert bad.status_code == 200 and "only letters and digits" in bad.content.decode()


def test_the_api_takes_and_returns_the_channel(client, lab, public_site):
    owner, project, job = lab
    _mturk_credentials(project, owner)
    client.login(username=owner.username, password=PASSWORD)
    response = client.post("/api/v1/hit-batches/", {"layers": [job.layer_set.get().pk], "channel": "mturk_sandbox"},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["channel"] == "mturk_sandbox"
    assert client.get("/api/v1/hit-batches/").json()["results"][0]["channel"] == "mturk_sandbox"
    bad = client.post("/api/v1/hit-batches/", {"layers": [job.layer_set.get().pk], "channel": "mturk"},
                      content_type="application/json")
    assert bad.status_code == 400 and "channel" in bad.json()


def test_the_command_publishes_to_the_sandbox_unless_told_live(lab, public_site):
    owner, project, job = lab
    _mturk_credentials(project, owner)
    out = StringIO()
    call_command("publish_hits", "--job", str(job.pk), "--channel", "mturk", stdout=out)
    assert "Mechanical Turk SANDBOX" in out.getvalue()
    assert HitBatch.objects.get().channel == Channel.MTURK_SANDBOX
    with pytest.raises(CommandError, match="--live is for --channel mturk"):
        call_command("publish_hits", "--job", str(job.pk), "--live")


# --- credentials --------------------------------------------------------------------------------

def test_credentials_are_stored_encrypted_and_never_shown_back(client, lab):
    owner, project, _ = lab
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("crowd:channels", args=[project.pk])
    response = client.post(url, {"mturk_access_key_id": "AKIAEXAMPLE", "mturk_secret": SECRET,
                                 "prolific_token": TOKEN, "budget_cap": "25.00", "prolific_hits_per_participant": 5})
    assert response.status_code == 302
    row = ChannelSettings.objects.get(project=project)
    raw = json.dumps(list(ChannelSettings.objects.filter(pk=row.pk).values()), default=str)
    assert SECRET not in raw and TOKEN not in raw
    assert secret_decrypt(row.mturk_secret_encrypted) == SECRET
    creds = channel_credentials(project)
    assert (creds.has_mturk, creds.has_prolific, creds.source) == (True, True, "project")
    assert SECRET not in repr(creds) and TOKEN not in repr(creds)
    page = client.get(url).content.decode()
    assert SECRET not in page and TOKEN not in page and "credentials set" in page
    # An empty secret keeps the stored one.
    client.post(url, {"mturk_access_key_id": "AKIAEXAMPLE", "budget_cap": "", "prolific_hits_per_participant": 5})
    assert channel_credentials(project).mturk_secret == SECRET
    log = " ".join(Activity.objects.filter(project=project).values_list("summary", flat=True))
    assert SECRET not in log and TOKEN not in log and "crowd channels" in log
    client.post(url, {"clear_credentials": "on", "prolific_hits_per_participant": 5})
    assert not channel_credentials(project).has_mturk


def test_stored_credentials_become_unreadable_when_the_key_changes(lab, settings):
    owner, project, _ = lab
    _mturk_credentials(project, owner)
    settings.MTURK_AWS_ACCESS_KEY_ID = settings.MTURK_AWS_SECRET_ACCESS_KEY = ""
    settings.CROWD_CREDENTIALS_KEY = "another key"
    assert not channel_credentials(project).has_mturk


def test_the_environment_stands_in_for_a_project_without_credentials(lab, settings):
    _, project, _ = lab
    settings.MTURK_AWS_ACCESS_KEY_ID, settings.MTURK_AWS_SECRET_ACCESS_KEY = "AKIAENV", "env-secret"
    creds = channel_credentials(project)
    assert (creds.mturk_access_key_id, creds.mturk_secret, creds.source) == ("AKIAENV", "env-secret", "environment")


def test_only_the_projects_owner_opens_its_channel_page(client, lab):
    owner, project, _ = lab
    url = reverse("crowd:channels", args=[project.pk])
    requester = make_user("rita")
    make_project("Other", owner=requester)
    from units.projects.models import Membership

    Membership.objects.create(project=project, user=make_user("reviewer-rob"), role="reviewer")
    for username, expected in (("reviewer-rob", 403), ("rita", 404), (owner.username, 200)):
        client.login(username=username, password=PASSWORD)
        assert client.get(url).status_code == expected, username
        if expected != 200:
            client.post(url, {"mturk_access_key_id": "AKIASNEAKY", "prolific_hits_per_participant": 5})
    assert not ChannelSettings.objects.filter(mturk_access_key_id="AKIASNEAKY").exists()


# --- shown loudly ----------------------------------------------------------------------------------

def test_pages_listing_a_batch_tell_sandbox_from_live(client, lab, public_site):
    owner, project, job = lab
    _mturk_credentials(project, owner)
    layers = list(job.layer_set.all())
    hit_publish(layers=layers, settings=PublishSettings(channel=Channel.MTURK_LIVE), created_by=owner)
    more = make_job(project=project, layers={"conv4": 1}, exemplars_per_unit=2)
    hit_publish(layers=more.layer_set.all(), settings=PublishSettings(channel=Channel.MTURK_SANDBOX),
                created_by=owner)
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("crowd:channels", args=[project.pk])).content.decode()
    assert "MTurk LIVE · real money" in page and "MTurk SANDBOX · test only" in page
    hit = Hit.objects.filter(batch__channel=Channel.MTURK_LIVE).first()
    assert "MTurk LIVE · real money" in client.get(reverse("crowd:review_hit", args=[hit.pk])).content.decode()

"""Against the real Mechanical Turk *sandbox* (test money only): skipped unless credentials are given.

How to run: create an AWS IAM user with the AmazonMechanicalTurkFullAccess policy, link its AWS account to
a requester sandbox account (https://requestersandbox.mturk.com, "Developer"), then

    MTURK_SANDBOX_ACCESS_KEY_ID=AKIA... MTURK_SANDBOX_SECRET_ACCESS_KEY=... \\
        .venv/bin/python -m pytest -q tests/integration/test_mturk_sandbox.py

It reads the sandbox balance, publishes one HIT of a small batch (its ExternalURL on SITE_URL, which must be
https), checks that a retry with the same UniqueRequestToken creates no second HIT, reads its (empty)
assignments and expires it again. The live endpoint is never used here.
"""
from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tests.factories import make_hits, make_job
from units.crowd.models import Channel, Hit, HitBatch
from units.crowd.mturk import (
    account_balance, batch_expire_mturk, batch_publish_mturk, batch_sync_mturk, mturk_client,
)

KEY_ID = os.environ.get("MTURK_SANDBOX_ACCESS_KEY_ID", "")
SECRET = os.environ.get("MTURK_SANDBOX_SECRET_ACCESS_KEY", "")
pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(not (KEY_ID and SECRET), reason="no MTurk sandbox credentials in the environment")]


def test_a_batch_goes_to_the_sandbox_once_and_comes_back_expired(settings):
    settings.SITE_URL = os.environ.get("MTURK_SANDBOX_SITE_URL", "https://crowd.example.org")
    settings.MTURK_AWS_ACCESS_KEY_ID, settings.MTURK_AWS_SECRET_ACCESS_KEY = KEY_ID, SECRET
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=2)
    hit = make_hits(job, assignments=1, lifetime_s=600)[0]
    HitBatch.objects.filter(pk=hit.batch_id).update(channel=Channel.MTURK_SANDBOX, reward=Decimal("0.01"))
    batch = HitBatch.objects.get(pk=hit.batch_id)
    client = mturk_client(batch.project_id, batch.channel)
    assert account_balance(client) >= 0
    assert batch_publish_mturk(batch, client=client).created == 1
    first = Hit.objects.get(pk=hit.pk).external_id
    Hit.objects.filter(pk=hit.pk).update(external_id="")  # as if the first answer had been lost
    again = batch_publish_mturk(HitBatch.objects.get(pk=batch.pk), client=client)
    assert (again.created, Hit.objects.get(pk=hit.pk).external_id) == (0, first)
    assert batch_sync_mturk(batch, client=client).matched == 0
    assert batch_expire_mturk(batch, client=client) == 1

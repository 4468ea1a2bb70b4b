"""Publishing turns units into HITs once: a second publish skips them, dead units are left out."""
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.factories import PASSWORD, make_job
from units.crowd.models import Hit, HitBatch
from units.crowd.errors import PublishError
from units.crowd.publishing import PublishSettings, hit_publish
from units.dissection.models import DissectionJob, Exemplar, Unit

pytestmark = pytest.mark.django_db


def test_each_live_unit_gets_one_hit_with_the_batch_settings(requester):
    job = make_job(layers={"conv2": 3, "conv3": 4}, exemplars_per_unit=2)
    Unit.objects.filter(layer__job=job, layer__name="conv3", index=2).update(max_activation=0.0)  # dead
    settings = PublishSettings(assignments_per_hit=5, reward="0.12", lifetime_seconds=3600,
                               assignment_duration_seconds=600, exemplars_shown=2)
    batch = hit_publish(layers=job.layer_set.all(), created_by=requester, settings=settings)
    assert (batch.report.created, batch.report.skipped_dead, batch.report.skipped_existing) == (6, 1, 0)
    hits = Hit.objects.filter(batch=batch)
    assert hits.count() == 6
    assert set(hits.values_list("max_assignments", "reward", "assignment_duration_seconds", "exemplars_shown")) == {
        (5, Decimal("0.12"), 600, 2)}
    assert not hits.filter(unit__max_activation__lte=0).exists()
    assert sorted(batch.layers.values_list("name", flat=True)) == ["conv2", "conv3"]


def test_publishing_the_same_layers_twice_creates_no_second_hit():
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=1)
    first = hit_publish(layers=job.layer_set.all())
    second = hit_publish(layers=job.layer_set.all())
    assert first.report.created == 4
    assert (second.report.created, second.report.skipped_existing) == (0, 4)
    assert Hit.objects.count() == 4
    assert HitBatch.objects.count() == 1  # an empty batch is not kept


def test_dead_units_are_published_when_asked():
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=1)
    Unit.objects.filter(layer__job=job).update(max_activation=0.0)
    assert hit_publish(layers=job.layer_set.all(), settings=PublishSettings(skip_dead=False)).report.created == 2


def test_gold_units_give_gold_hits():
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=1)
    Unit.objects.filter(layer__job=job, index=1).update(is_gold=True, gold_word="1", gold_category="object")
    hit_publish(layers=job.layer_set.all())
    assert list(Hit.objects.order_by("unit__index").values_list("is_gold", flat=True)) == [False, True]


def test_it_refuses_unfinished_jobs_bad_settings_and_missing_sentinels():
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    with pytest.raises(PublishError, match="at least one layer"):
        hit_publish(layers=[])
    with pytest.raises(PublishError, match="between 1 and 100"):
        hit_publish(layers=job.layer_set.all(), settings=PublishSettings(assignments_per_hit=0))
    with pytest.raises(PublishError, match="sentinel"):
        hit_publish(layers=job.layer_set.all(), settings=PublishSettings(sentinels=2))
    DissectionJob.objects.filter(pk=job.pk).update(status="running")
    with pytest.raises(PublishError, match="not finished"):
        hit_publish(layers=job.layer_set.all())
    assert not Hit.objects.exists() and not HitBatch.objects.exists()


def test_sentinels_are_allowed_once_the_units_have_sentinel_exemplars():
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    unit = Unit.objects.get(layer__job=job)
    Exemplar.objects.create(unit=unit, kind="sentinel", rank=0, image_index=99, image_name="x.png", score=0.0,
                            picture="x.jpg")
    batch = hit_publish(layers=job.layer_set.all(), settings=PublishSettings(sentinels=1))
    assert batch.sentinels == 1 and batch.report.created == 1


def test_the_command_publishes_chosen_layers_and_names_unknown_ones(capsys):
    job = make_job(layers={"conv2": 2, "conv3": 3}, exemplars_per_unit=1)
    call_command("publish_hits", "--job", str(job.pk), "--layers", "conv3", "--assignments", "2")
    assert "3 HIT(s) created" in capsys.readouterr().out
    assert set(Hit.objects.values_list("unit__layer__name", "max_assignments")) == {("conv3", 2)}
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no layer conv9.*conv2, conv3"):
        call_command("publish_hits", "--job", str(job.pk), "--layers", "conv9")


def test_the_command_names_the_batch_with_the_title_given():
    from units.crowd.models import HitBatch

    job = make_job(layers={"conv2": 2, "conv3": 3}, exemplars_per_unit=1)
    call_command("publish_hits", "--job", str(job.pk), "--layers", "conv2", "--title", "Street scenes: name it")
    call_command("publish_hits", "--job", str(job.pk), "--layers", "conv3")
    names = list(HitBatch.objects.order_by("pk").values_list("name", flat=True))
    assert names[0] == "Street scenes: name it"
    assert names[1].startswith("Name what units detect: ") and names[1].endswith("conv3")


def test_the_publish_page_creates_hits_for_the_chosen_layers(client, requester):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=1)
    client.login(username=requester.username, password=PASSWORD)
    response = client.post(reverse("publish"), {
        "layers": [job.layer_set.get().pk], "assignments_per_hit": 3, "reward": "0.05", "lifetime_hours": 24,
        "assignment_minutes": 15, "auto_approval_hours": 72, "exemplars_shown": 15, "sentinels": 0, "skip_dead": "on",
    }, follow=True)
    assert response.status_code == 200
    assert "3 HIT(s) created" in response.content.decode()
    assert Hit.objects.count() == 3


def test_the_requesters_title_is_what_annotators_see_for_the_batch(client, requester):
    from tests.factories import make_user
    from units.crowd.models import HitBatch

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=1)
    client.login(username=requester.username, password=PASSWORD)
    form = {"layers": [job.layer_set.get().pk], "assignments_per_hit": 3, "reward": "0.05", "lifetime_hours": 24,
            "assignment_minutes": 15, "auto_approval_hours": 72, "exemplars_shown": 15, "sentinels": 0,
            "skip_dead": "on", "title": "Name what a digit classifier's units see"}
    assert 'name="title"' in client.get(reverse("publish")).content.decode()
    client.post(reverse("publish"), form)
    assert HitBatch.objects.get().name == "Name what a digit classifier's units see"
    annie = make_user("annie", qualified=True)
    client.force_login(annie)
    home = client.get(reverse("crowd:home")).content.decode()
    assert "Name what a digit classifier&#x27;s units see" in home
    work = client.get(client.post(reverse("crowd:next"))["Location"]).content.decode()
    assert "Name what a digit classifier&#x27;s units see" in work


def test_without_a_title_the_batch_is_named_in_words_not_ids(requester):
    from units.crowd.publishing import hit_publish

    job = make_job(layers={"conv3": 2}, exemplars_per_unit=1)
    batch = hit_publish(layers=list(job.layer_set.all()))
    assert batch.name == f"Name what units detect: {job.network.name} conv3"

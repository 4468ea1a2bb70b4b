"""A batch's adaptive redundancy (the probability below which a unit gets one more answer, and the most
answers per unit) is set on the publish page and through the API, checked with a clear error, and shown
with the project's batches."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from units.crowd.errors import PublishError
from units.crowd.models import Hit, HitBatch
from units.crowd.publishing import PublishSettings, hit_publish

pytestmark = pytest.mark.django_db


def _page_data(job, **extra):
    return {"layers": [layer.pk for layer in job.layer_set.all()], "assignments_per_hit": 3, "reward": "0.05",
            "lifetime_hours": 1, "assignment_minutes": 5, "auto_approval_hours": 1, "exemplars_shown": 2,
            "sentinels": 0, "skip_dead": "on", **extra}


def test_the_publish_page_stores_the_batchs_redundancy_and_the_batches_table_shows_it(client, lab, settings):
    owner, project, job = lab
    settings.RESULTS_REDUNDANCY_PROBABILITY, settings.RESULTS_REDUNDANCY_CAP = 0.7, 4
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("publish")).content.decode()
    assert 'name="redundancy_probability"' in page and 'name="redundancy_cap"' in page
    assert "the site&#x27;s default (0.7)" in page and "the site&#x27;s default (4)" in page
    response = client.post(reverse("publish"), _page_data(job, redundancy_probability="0.9", redundancy_cap="6"))
    assert response.status_code == 302
    batch = HitBatch.objects.get()
    assert (batch.redundancy_probability, batch.redundancy_cap) == (0.9, 6)
    assert set(Hit.objects.values_list("max_assignments", flat=True)) == {3}  # extra answers come later
    listing = client.get(reverse("crowd:channels", args=[project.pk])).content.decode()
    assert "below 0.90, up to 6 per unit" in listing
    assert "site default" not in listing


def test_a_batch_without_its_own_redundancy_is_listed_with_the_sites(client, lab, settings):
    owner, project, job = lab
    settings.RESULTS_REDUNDANCY_PROBABILITY, settings.RESULTS_REDUNDANCY_CAP = 0.75, 5
    client.login(username=owner.username, password=PASSWORD)
    assert client.post(reverse("publish"), _page_data(job)).status_code == 302
    batch = HitBatch.objects.get()
    assert (batch.redundancy_probability, batch.redundancy_cap) == (None, None)
    listing = client.get(reverse("crowd:channels", args=[project.pk])).content.decode()
    assert "below 0.75, up to 5 per unit <small>(site default)</small>" in listing


@pytest.mark.parametrize("extra, message", [
    ({"redundancy_probability": "1.5"}, "less than or equal to 1"),
    ({"redundancy_probability": "-0.1"}, "greater than or equal to 0"),
    ({"redundancy_probability": "often"}, "Enter a number"),
    ({"redundancy_probability": "nan"}, "Enter a number"),
    ({"redundancy_cap": "0"}, "greater than or equal to 1"),
    ({"redundancy_cap": "2"}, "At least the assignments per HIT (3)"),
    ({"redundancy_cap": "101"}, "less than or equal to 100"),
    ({"hit_type": "verify", "label_sources": ["iou"], "redundancy_cap": "5"}, "label HITs only"),
])
def test_the_publish_page_refuses_bad_redundancy_with_a_message_and_publishes_nothing(client, lab, extra, message):
    owner, _, job = lab
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(reverse("publish"), _page_data(job, **extra))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not HitBatch.objects.exists() and not Hit.objects.exists()


def test_the_api_takes_returns_and_lists_the_redundancy(client, lab):
    owner, _, job = lab
    client.login(username=owner.username, password=PASSWORD)
    made = client.post("/api/v1/hit-batches/", {"layers": [job.layer_set.get().pk], "assignments_per_hit": 2,
                                                 "redundancy_probability": 0.85, "redundancy_cap": 4},
                       content_type="application/json")
    assert made.status_code == 201, made.content
    assert (made.json()["redundancy_probability"], made.json()["redundancy_cap"]) == (0.85, 4)
    listed = client.get("/api/v1/hit-batches/").json()["results"][0]
    assert (listed["redundancy_probability"], listed["redundancy_cap"]) == (0.85, 4)
    assert (HitBatch.objects.get().redundancy_probability, HitBatch.objects.get().redundancy_cap) == (0.85, 4)


def test_through_the_api_null_means_the_sites_defaults(client, lab):
    owner, _, job = lab
    client.login(username=owner.username, password=PASSWORD)
    made = client.post("/api/v1/hit-batches/", {"layers": [job.layer_set.get().pk], "redundancy_probability": None},
                       content_type="application/json")
    assert made.status_code == 201, made.content
    assert (made.json()["redundancy_probability"], made.json()["redundancy_cap"]) == (None, None)


@pytest.mark.parametrize("extra, field", [
    ({"redundancy_probability": 1.01}, "redundancy_probability"),
    ({"redundancy_probability": "sometimes"}, "redundancy_probability"),
    ({"redundancy_cap": 0}, "redundancy_cap"),
    ({"redundancy_cap": 1000}, "redundancy_cap"),
    ({"redundancy_cap": "five"}, "redundancy_cap"),
    ({"redundancy_cap": 2, "assignments_per_hit": 3}, "detail"),
])
def test_the_api_refuses_bad_redundancy_with_a_400_that_names_it_and_publishes_nothing(client, lab, extra, field):
    owner, _, job = lab
    client.login(username=owner.username, password=PASSWORD)
    response = client.post("/api/v1/hit-batches/", {"layers": [job.layer_set.get().pk], **extra},
                           content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    if field == "detail":
        assert "between the assignments per HIT (3) and 100" in response.json()["detail"]
    assert not HitBatch.objects.exists() and not Hit.objects.exists()


def test_the_publishing_service_checks_the_redundancy_itself(lab):
    _, _, job = lab
    for bad in (PublishSettings(redundancy_probability=float("nan")), PublishSettings(redundancy_probability=2.0),
                PublishSettings(assignments_per_hit=4, redundancy_cap=3)):
        with pytest.raises(PublishError):
            hit_publish(layers=job.layer_set.all(), settings=bad)
    assert not HitBatch.objects.exists()
    batch = hit_publish(layers=job.layer_set.all(), settings=PublishSettings(redundancy_probability=0.6,
                                                                              redundancy_cap=3))
    assert (batch.redundancy_probability, batch.redundancy_cap) == (0.6, 3)

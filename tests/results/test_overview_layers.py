"""The results overview names each layer once: re-aggregated layers show their latest run only, and
layers of the same name in different jobs are told apart by job and network."""
import re

import pytest
from django.test import Client

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


def test_each_layer_is_listed_once_in_the_overviews_runs(media_root):
    first = make_job(layers={"conv1": 2, "conv2": 2}, exemplars_per_unit=2)
    second = make_job(layers={"conv2": 2}, exemplars_per_unit=2)  # the same layer name, another job
    for job in (first, second):
        hits = make_hits(job)
        answer(hits[0], make_user(f"a{job.pk}"), "dog", "object")
    conv2 = first.layer_set.get(name="conv2")
    for _ in range(3):  # aggregated again and again
        aggregation_run_layer(layer=conv2, adapt=False)
    aggregation_run_layer(layer=first.layer_set.get(name="conv1"), adapt=False)
    aggregation_run_layer(layer=second.layer_set.get(), adapt=False)

    client = Client()
    client.force_login(make_user("rita", requester=True))
    html = client.get("/results/").content.decode()
    runs = html[html.index("<h2>Latest aggregation"):]
    scopes = re.findall(r'href="/results/layers/(\d+)/">([^<]+)</a>', runs)
    assert sorted(int(pk) for pk, _ in scopes) == sorted(
        [conv2.pk, first.layer_set.get(name="conv1").pk, second.layer_set.get().pk])
    labels = [label for _, label in scopes]
    assert len(set(labels)) == len(labels)  # the two conv2 layers read differently
    assert f"job {first.pk} · " in runs and f"job {second.pk} · " in runs

"""The demo builds everything once; a rerun reuses it and creates nothing new."""
import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from units.crowd.models import Hit, HitBatch
from units.dissection.models import DissectionJob, Network, ProbeDataset, Unit

# transaction=True: the demo starts its job "on commit", as it does outside tests.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_quick_demo_builds_the_pipeline_and_a_rerun_reuses_it(settings, tmp_path, media_root, capsys):
    settings.DEBUG = True  # the README's well-known demo passwords are for development only
    settings.DATASETS_ROOT = tmp_path / "datasets"
    settings.VAR_DIR = tmp_path
    call_command("demo", "--quick")
    job = DissectionJob.objects.get()
    assert job.status == "succeeded", job.error_message
    assert sorted(job.layer_set.values_list("name", "num_units")) == [("conv1", 10), ("conv2", 20), ("conv3", 10)]
    live_units = Unit.objects.filter(layer__job=job, max_activation__gt=0).count()
    assert Hit.objects.filter(kind="label").count() == live_units > 0
    assert Hit.objects.filter(kind="verify").count() > 0  # quick yes/no work for new annotators
    assert set(Hit.objects.values_list("max_assignments", flat=True)) == {3}
    # Annotators read the batch titles: words about the work, no internal names or ids.
    titles = dict(HitBatch.objects.values_list("kind", "name"))
    assert titles == {"label": "Digit pictures: name what each unit detects",
                      "verify": "Digit pictures: does the proposed word fit?"}
    assert authenticate(username="admin", password="unitcrowd-admin").is_superuser
    for k in (1, 2, 3):
        assert authenticate(username=f"annotator{k}", password="unitcrowd-annotator") is not None
    capsys.readouterr()

    call_command("demo", "--quick")
    out = capsys.readouterr().out
    assert "reused" in out
    assert (Network.objects.count(), ProbeDataset.objects.count(), DissectionJob.objects.count()) == (1, 1, 1)
    assert Hit.objects.filter(kind="label").count() == live_units
    assert HitBatch.objects.count() == 2

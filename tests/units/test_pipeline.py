"""A dissection job runs end to end in-process and stores exactly one set of results."""
import pytest

from tests.factories import make_registered_pipeline
from units.models import DissectionJob, Exemplar, Layer, Unit, UnitConceptScore
from units.services import job_start

pytestmark = pytest.mark.django_db


def test_a_job_runs_to_success_and_stores_every_unit_with_its_exemplars(tiny_mixture_dir, media_root, django_capture_on_commit_callbacks):
    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv3"], top_k=3)
    with django_capture_on_commit_callbacks(execute=True):
        job_start(job=job)
    job.refresh_from_db()
    assert job.status == DissectionJob.Status.SUCCEEDED, job.error_message
    assert job.progress == 1.0
    assert sorted(Layer.objects.filter(job=job).values_list("name", "num_units")) == [("conv1", 10), ("conv3", 10)]
    assert Unit.objects.filter(layer__job=job).count() == 20
    assert Exemplar.objects.filter(unit__layer__job=job, kind="top").count() == 20 * 3
    for ex in Exemplar.objects.filter(unit__layer__job=job)[:10]:
        assert (media_root / ex.picture).is_file()

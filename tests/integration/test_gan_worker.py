"""A real worker process (Redis + PostgreSQL) runs a generator's dissection job to the end."""
import pytest

from tests.dissection.gan_helpers import make_generator_job
from tests.integration.test_worker import FINISHED, services, start_worker, stop, wait_for  # noqa: F401
from units.dissection.models import Exemplar, Unit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_process_runs_a_generator_job_and_stores_its_units(services, tmp_path):  # noqa: F811
    from units.dissection.services import job_start

    job = make_generator_job(tmp_path, layers=("layer2",), samples=16, top_k=3)
    worker = start_worker(services, tmp_path, "gan1")
    try:
        job_start(job=job)
        job = wait_for(job, lambda j: j.status in FINISHED, 300, tmp_path)
    finally:
        stop(worker)
    assert job.status == "succeeded", job.error_message
    assert Unit.objects.filter(layer__job=job).count() == 16
    assert Exemplar.objects.filter(unit__layer__job=job, kind="top").count() == 16 * 3
    assert Exemplar.objects.filter(unit__layer__job=job, kind="sentinel").count() == 16 * 3

"""Fixtures of the crowd tests: a small dissected job with its HITs, and a requester's project with a job."""
import pytest

from tests.factories import make_hits, make_job, make_project, make_user


@pytest.fixture
def job(db):
    return make_job(layers={"conv3": 4}, exemplars_per_unit=6)


@pytest.fixture
def hits(job):
    return make_hits(job, assignments=2, duration_s=600, lifetime_s=3600)


@pytest.fixture
def lab():
    """A requester (olga), the project she owns, and a 4-unit job in it."""
    owner = make_user("olga", requester=True)
    project = make_project("Lab A", owner=owner)
    job = make_job(project=project, layers={"conv3": 4}, exemplars_per_unit=2)
    return owner, project, job

"""Fixtures of the crowd tests: a small dissected job with its HITs."""
import pytest

from tests.factories import make_hits, make_job


@pytest.fixture
def job(db):
    return make_job(layers={"conv3": 4}, exemplars_per_unit=6)


@pytest.fixture
def hits(job):
    return make_hits(job, assignments=2, duration_s=600, lifetime_s=3600)

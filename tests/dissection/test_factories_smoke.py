"""The shared factories build a consistent job: every unit has its exemplars and a HIT."""
import pytest

from tests.factories import make_hits, make_job
from units.crowd.models import Hit
from units.dissection.models import Exemplar, Unit


@pytest.mark.django_db
def test_a_made_job_has_units_exemplars_and_one_hit_per_unit():
    job = make_job(layers={"conv2": 3, "conv3": 2}, exemplars_per_unit=5)
    make_hits(job)
    assert Unit.objects.filter(layer__job=job).count() == 5
    assert Exemplar.objects.filter(unit__layer__job=job).count() == 25
    assert Hit.objects.filter(unit__layer__job=job).count() == 5

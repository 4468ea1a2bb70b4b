"""The exports stream (iterate in chunks, write as they go) and still write the bytes they wrote when they
built the whole document in memory: compared here with json.dump of the full list, the reference writer.
Their memory is measured by `python -m benchmarks.loadtest --export-memory N` (a benchmark, not a test)."""
import json

import pytest

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.dissection.models import Unit
from units.results.exports import DEPRECATED_COLUMNS, LABELLED_COLUMNS, labelled_rows, write_units_json
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def layer():
    job = make_job(layers={"conv3": 7}, exemplars_per_unit=2, concepts=[("chien", "object"), ("木", "material")])
    hits = make_hits(job)
    for i, hit in enumerate(hits):
        answer(hit, make_user(f"w{i}a", qualified=True), "chien é", "object")
        answer(hit, make_user(f"w{i}b", qualified=True), "木", "material")
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    return layer


def reference_json(units) -> str:
    return json.dumps({"columns": LABELLED_COLUMNS, "unit_numbering": "from 1 (NetDissect)",
                       "deprecated_columns": {"category_ds": DEPRECATED_COLUMNS["category_ds"]},
                       "units": list(labelled_rows(units))}, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("n_units", [0, 1, 7])
def test_streamed_json_equals_json_dump_of_the_whole_list(layer, tmp_path, n_units):
    units = Unit.objects.filter(layer=layer, index__lt=n_units)
    write_units_json(tmp_path / "u.json", units)
    text = (tmp_path / "u.json").read_text(encoding="utf-8")
    assert text == reference_json(units)
    assert len(json.loads(text)["units"]) == n_units


"""`loadtest --export-memory`: the seed holds exactly N counted answers and each export's child run writes them.
(The child process and its RSS figures are the benchmark's; here the same functions run in-process.)"""
import csv

import pytest

from units.crowd.models import Annotation, Assignment
from benchmarks.loadtest.export_memory import export_jobs, run_child, seed_annotations

pytestmark = [pytest.mark.django_db]


def test_seeded_answers_are_exported_whole():
    layer_id, batch_id = seed_annotations(23)  # not a multiple of 5: the last unit gets 3 answers
    assert Annotation.objects.filter(assignment__hit__batch_id=batch_id,
                                     assignment__status=Assignment.Status.SUBMITTED).count() == 23
    results = {r["kind"]: r for r in (run_child(e.pk) for e in export_jobs(layer_id, batch_id))}
    assert set(results) == {"units_csv", "units_json", "tally", "mturk", "milan"}
    assert all(r["bytes"] > 0 and r["peak_mib"] >= r["before_mib"] > 0 for r in results.values())


def test_the_mturk_export_of_the_seed_has_one_row_per_answer(tmp_path):
    from units.crowd.models import Hit
    from units.results.exports import write_mturk

    _, batch_id = seed_annotations(23)
    write_mturk(tmp_path / "m.csv", Hit.objects.filter(batch_id=batch_id))
    with open(tmp_path / "m.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 23

"""Management commands: export, aggregate, import_tally, import_mturk."""
import csv
import io

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Annotation
from units.results.models import UnitAggregate

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def job():
    job = make_job(layers={"conv3": 2, "conv2": 2}, exemplars_per_unit=4)
    hits = make_hits(job)
    answer(hits[0], make_user("cmd1"), "dog", "object")
    return job


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_aggregate_then_export_a_layers_labelled_units(job, media_root, tmp_path):
    out = run("aggregate", "--job", str(job.pk), "--layer", "conv3")
    assert out.startswith("conv3: 1 units, 1 annotations")
    assert UnitAggregate.objects.filter(unit__layer__name="conv3").count() == 1
    path = run("export", "units_csv", "--job", str(job.pk), "--layer", "conv3", "--output", str(tmp_path)).strip()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    # units from 1
    assert [(r["layer"], r["unit"], r["crowd_word"]) for r in rows] == [("conv3", "1", "dog"), ("conv3", "2", "")]
    assert "units_csv_" in path


def test_aggregating_a_whole_job_covers_every_layer(job):
    assert run("aggregate", "--job", str(job.pk)).count("annotations") == 2


def test_unknown_layers_and_missing_scopes_are_refused_with_the_valid_names(job):
    with pytest.raises(CommandError, match="has no layer 'conv9'; its layers: .*conv3"):
        run("aggregate", "--job", str(job.pk), "--layer", "conv9")
    with pytest.raises(CommandError, match="per layer"):
        run("export", "tally", "--job", str(job.pk))
    with pytest.raises(CommandError, match="Choose what to"):
        run("aggregate")


def test_mturk_export_imports_back_with_the_command(job, media_root, tmp_path):
    path = run("export", "mturk", "--job", str(job.pk), "--layer", "conv3").strip()
    other = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    out = run("import_mturk", path, "--job", str(other.pk), "--layer", "conv3")
    assert out.startswith("1 annotation(s) imported")
    assert Annotation.objects.filter(assignment__hit__unit__layer__job=other).get().word == "dog"


def test_import_tally_reports_bad_files_clearly(job, tmp_path):
    bad = tmp_path / "tally.csv"
    bad.write_text("not,a,tally\n")
    with pytest.raises(CommandError, match="tally.csv: cannot read it"):
        run("import_tally", str(bad), "--job", str(job.pk), "--layer", "conv3")

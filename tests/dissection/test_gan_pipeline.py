"""A generator's dissection job runs like a classifier's and its units go all the way to HITs and exports."""
import csv
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image

from tests.dissection.gan_helpers import make_generator_job
from tests.factories import PASSWORD
from units.crowd.models import Hit
from units.crowd.publishing import PublishSettings, hit_publish
from units.crowd.selectors import hit_pictures
from units.dissection.models import DissectionJob, Exemplar, Network, ProbeDataset, Unit, UnitConceptScore
from units.dissection.services import job_start

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gan")


@pytest.fixture
def gan_job(checkpoint_dir, media_root, django_capture_on_commit_callbacks):
    job = make_generator_job(checkpoint_dir, layers=("layer1", "layer2"), samples=16, top_k=3)
    with django_capture_on_commit_callbacks(execute=True):
        job_start(job=job)
    job.refresh_from_db()
    return job


def test_registering_a_generator_and_its_segmenter_records_their_kinds_and_the_digit_vocabulary(checkpoint_dir):
    job = make_generator_job(checkpoint_dir)
    assert job.network.kind == Network.Kind.GENERATOR and job.kind == DissectionJob.Kind.GENERATOR
    assert job.dataset.kind == ProbeDataset.Kind.SEGMENTER
    assert [(c.number, c.name, c.category) for c in job.dataset.concepts.all()] == [
        (d + 1, str(d), "object") for d in range(10)]
    assert (job.samples, job.sample_seed) == (24, 0)  # the helper's defaults


def test_a_generator_job_runs_to_success_and_stores_every_unit_with_generated_exemplars(gan_job, media_root):
    job = gan_job
    assert job.status == DissectionJob.Status.SUCCEEDED, job.error_message
    assert (job.progress, job.stage) == (1.0, "done")
    # dcgan32 at width 8: layer1 has 32 units at 4x4, layer2 16 units at 8x8.
    assert sorted(job.layer_set.values_list("name", "num_units")) == [("layer1", 32), ("layer2", 16)]
    assert Unit.objects.filter(layer__job=job).count() == 48
    tops = Exemplar.objects.filter(unit__layer__job=job, kind="top")
    assert tops.count() == 48 * 3
    for ex in tops:
        assert ex.image_name == f"seed0/sample_{ex.image_index:06d}" and 0 <= ex.image_index < 16
        with Image.open(media_root / ex.picture) as picture:
            assert picture.size == (128, 128)  # a 32 px generated image, enlarged for people to judge
        assert (media_root / ex.plain).is_file()


def test_the_stored_rows_match_the_engines_files(gan_job, media_root):
    job = gan_job
    for layer in job.layer_set.all():
        folder = media_root / job.output_dir / layer.name
        with (folder / "tally.csv").open() as f:
            tally = {int(r["unit"]) - 1: r for r in csv.DictReader(f)}
        with (folder / "topk.csv").open() as f:
            topk = list(csv.DictReader(f))
        thresholds = np.load(folder / "thresholds.npy")
        assert layer.summary["kind"] == "generator"
        for unit in layer.units.prefetch_related("exemplars"):
            assert unit.iou_label == tally[unit.index]["label"]
            assert unit.iou_score == pytest.approx(float(tally[unit.index]["score"]), abs=1e-6)
            assert unit.threshold == pytest.approx(float(thresholds[unit.index]), rel=1e-6)
            top = sorted((e for e in unit.exemplars.all() if e.kind == "top"), key=lambda e: e.rank)
            assert top, unit
            best = UnitConceptScore.objects.filter(unit=unit, rank=0).select_related("concept").first()
            if best:
                assert best.concept.name == unit.iou_label
        assert len(topk) > 0


def test_generator_sentinels_are_samples_outside_the_top_images_where_the_unit_fires_least(gan_job, media_root):
    for unit in Unit.objects.filter(layer__job=gan_job).prefetch_related("exemplars"):
        top = [e for e in unit.exemplars.all() if e.kind == "top"]
        sentinels = [e for e in unit.exemplars.all() if e.kind == "sentinel"]
        assert len(sentinels) == 3
        assert not {s.image_index for s in sentinels} & {e.image_index for e in top}
        assert max(s.score for s in sentinels) <= min(e.score for e in top)
    # A sentinel is drawn like a top picture (same size, same inverted grey), so its pixels do not give it away.
    some = Exemplar.objects.filter(unit__layer__job=gan_job, kind="sentinel").first()
    with Image.open(media_root / some.picture) as picture:
        assert picture.size == (128, 128)


def test_generator_units_go_from_hits_to_the_crowds_labels_and_every_export(
    gan_job, client, annotator, other_annotator, media_root, tmp_path, django_capture_on_commit_callbacks
):
    from units.crowd.models import Assignment
    from units.crowd.services import annotation_submit, assignment_claim, assignment_return
    from units.results import exports

    layer = gan_job.layer_set.get(name="layer2")
    batch = hit_publish(layers=[layer], settings=PublishSettings(assignments_per_hit=2, exemplars_shown=3))
    live = Unit.objects.filter(layer=layer, max_activation__gt=0).count()
    assert batch.report.created == live == Hit.objects.count() > 0

    # The annotator's page shows the generated, highlighted pictures of the claimed unit.
    client.login(username=annotator.username, password=PASSWORD)
    response = client.post(reverse("crowd:next"))
    mine = Assignment.objects.get(worker=annotator)
    page = client.get(response["Location"]).content.decode()
    assert all(f"jobs/{gan_job.pk}/" in ex.picture_url for ex in mine.hit.unit.exemplars.filter(kind="top"))
    for picture in hit_pictures(mine.hit):  # opaque URLs; the bytes are the generated exemplar's file
        assert picture.picture_url in page
        served = b"".join(client.get(picture.picture_url).streaming_content)
        stored = Exemplar.objects.get(pk=picture.exemplar_id)
        assert served == (Path(settings.MEDIA_ROOT) / stored.picture).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("crowd:work", args=[mine.pk]), {"word": "seven", "category": "object", "confidence": "4"})
        # The queue picks HITs in its own order: the other annotator returns others until they get this one.
        for _ in range(Hit.objects.count()):
            theirs = assignment_claim(worker=other_annotator)
            if theirs.hit_id == mine.hit_id:
                break
            assignment_return(assignment_id=theirs.pk, worker=other_annotator)
        assert theirs.hit_id == mine.hit_id
        annotation_submit(assignment_id=theirs.pk, worker=other_annotator, word="seven", category="object")

    unit = mine.hit.unit
    unit.refresh_from_db()
    # Aggregated like any classifier unit; "seven" normalises to the segmenter's concept "7".
    assert unit.aggregate.crowd_word == "7"
    csv_path, tally_path, mturk_path, milan_path = (tmp_path / n for n in ("u.csv", "t.csv", "m.csv", "m.zip"))
    exports.write_units_csv(csv_path, Unit.objects.filter(layer=layer))
    rows = {
        int(r["unit"]) - 1: r for r in csv.DictReader(csv_path.open(encoding="utf-8-sig"))
    }  # the file counts from 1
    assert len(rows) == layer.num_units
    assert (rows[unit.index]["crowd_word"], rows[unit.index]["iou_label"]) == ("7", unit.iou_label)
    exports.write_tally(tally_path, layer)
    tally = {int(r["unit"]) - 1: r for r in csv.DictReader(tally_path.open(encoding="utf-8-sig"))}
    assert tally[unit.index]["crowd-word"] == "7"
    exports.write_mturk(mturk_path, Hit.objects.filter(unit__layer=layer))
    answers = [r for r in csv.DictReader(mturk_path.open(encoding="utf-8-sig")) if r["Answer.word"]]
    assert len(answers) == 2 and {r["Input.layer"] for r in answers} == {"layer2"}
    exports.write_milan(milan_path, Unit.objects.filter(pk=unit.pk))
    import zipfile

    with zipfile.ZipFile(milan_path) as zf:
        names = zf.namelist()
    assert sum(n.startswith("layer2/images/") for n in names) == 3
    assert sum(n.startswith("layer2/masks/") for n in names) == 3

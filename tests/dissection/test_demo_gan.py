"""`demo --with-gan` adds a generator, its segmenter and a dissection, and its HITs when asked
(`--publish-gan`), so a new annotator starts on the classifier's units; a rerun reuses everything."""
import pytest
from django.core.management import call_command

from tests.factories import make_user
from units.crowd.models import Hit, HitBatch
from units.crowd.services import assignment_claim, hit_skip
from units.dissection.models import DissectionJob, Network, ProbeDataset, Unit

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_quick_demo_with_gan_publishes_generator_units_only_when_asked_and_a_rerun_reuses_them(
        settings, tmp_path, media_root, capsys):
    settings.DATASETS_ROOT = tmp_path / "datasets"
    settings.VAR_DIR = tmp_path
    call_command("demo", "--quick", "--with-gan")
    job = DissectionJob.objects.get(kind="generator")
    assert not Hit.objects.filter(unit__layer__job=job).exists()
    assert "--publish-gan" in capsys.readouterr().out
    # A new annotator's first HITs are the classifier's: there is nothing else to hand out.
    newcomer = make_user("newcomer", qualified=job.project)
    kinds = set()
    for _ in range(6):
        assignment = assignment_claim(worker=newcomer)
        if assignment is None:
            break
        kinds.add(assignment.hit.unit.layer.job.kind)
        hit_skip(assignment_id=assignment.pk, worker=newcomer)
    assert kinds == {"classifier"}

    call_command("demo", "--quick", "--with-gan", "--publish-gan")
    assert job.status == "succeeded", job.error_message
    assert (job.network.architecture, job.dataset.kind, job.samples) == ("sprites32", "segmenter", 40)
    assert list(job.layer_set.values_list("name", "num_units")) == [("layer2", 200)]
    from tasks.engine.gan.models import SpriteGenerator, load_generator

    generator = load_generator(checkpoint=settings.VAR_DIR / "demo-generator.pt")
    assert isinstance(generator, SpriteGenerator) and generator.per_digit == 20
    scores = job.dataset.meta["segmenter_scores"]  # scored on held-out canvases, shown beside the units' IoU
    assert scores["n_images"] == 40 and all(0.0 <= scores[k] <= 1.0 for k in ("pixel_accuracy", "mean_digit_iou"))
    live = Unit.objects.filter(layer__job=job, max_activation__gt=0).count()
    assert Hit.objects.filter(unit__layer__job=job, kind="label").count() == live > 0
    assert set(HitBatch.objects.filter(layers__job=job).values_list("name", flat=True)) >= {
        "Generated digit pictures: name what each unit detects"}
    assert f"/jobs/{job.pk}/paint/" in capsys.readouterr().out

    call_command("demo", "--quick", "--with-gan", "--publish-gan")
    assert "reused" in capsys.readouterr().out
    assert (Network.objects.count(), ProbeDataset.objects.count(), DissectionJob.objects.count()) == (2, 2, 2)
    assert Hit.objects.filter(unit__layer__job=job, kind="label").count() == live

"""Generator units' IoU is shown with the accuracy of the segmenter it was measured against, and a unit
whose best IoU does not pass NetDissect's threshold is shown as unlabelled."""
import re

import pytest
import torch
from django.urls import reverse

from tests.dissection.gan_helpers import make_finished_generator_job
from tests.factories import PASSWORD, lab_project
from units.dissection.models import ProbeDataset
from units.dissection.services import DatasetSource, dataset_register

pytestmark = pytest.mark.django_db

SCORES = {"pixel_accuracy": 0.9731, "digit_pixel_accuracy": 0.8123, "mean_digit_iou": 0.6542,
          "per_digit_iou": {str(d): 0.6 for d in range(10)}, "n_images": 200}


def _with_scores(src, dst, scores):
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["metrics"] = {"epochs": 1, "val": scores}
    torch.save(payload, dst)
    return dst


def test_a_segmenter_registered_with_held_out_scores_keeps_them_and_one_without_says_so(tmp_path):
    job = make_finished_generator_job(tmp_path)
    plain = job.dataset
    assert plain.meta["segmenter_scores"] is None
    scored = dataset_register(project=lab_project(), name="scored-seg", kind="segmenter", any_path=True,
                              source=DatasetSource(path=str(_with_scores(tmp_path / "segmenter.pt",
                                                                         tmp_path / "scored.pt", SCORES))))
    assert ProbeDataset.objects.get(pk=scored.pk).meta["segmenter_scores"] == SCORES


def test_the_layer_page_shows_the_segmenters_accuracy_and_marks_weak_units_unlabelled(client, requester, tmp_path):
    job = make_finished_generator_job(tmp_path)  # 16 units; unit u has IoU 0.01 * (u + 1), label str(u % 10)
    layer = job.layer_set.get()
    client.login(username=requester.username, password=PASSWORD)
    url = reverse("dissection:layer", args=[layer.pk])
    page = client.get(url).content.decode()
    assert "Its checkpoint carries no held-out scores" in page
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(
        r'id="unit-(\d+)">(.*?)</div>', page, flags=re.S)}
    assert rows, "the page must list units for the test to bite"
    for index, row in rows.items():
        score = 0.01 * (index + 1)
        if score > 0.04 + 1e-9:
            assert "unlabelled" not in row and f'<span class="label">{index % 10}</span>' in row
        else:
            assert f"unlabelled (best: {index % 10}, IoU {score:.3f})" in row
    dataset = job.dataset
    dataset.meta = {**dataset.meta, "segmenter_scores": SCORES}
    dataset.save(update_fields=["meta"])
    page = client.get(url).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "pixel accuracy 0.973, digit-pixel accuracy 0.812 and mean digit IoU 0.654 (200 canvases)" in text

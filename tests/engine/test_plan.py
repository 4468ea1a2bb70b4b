"""The whole run at bounded disk: spill vs recompute, the planner's estimate, budgets, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, dissect, plan_dissection
from tasks.engine.errors import EngineError
from tasks.engine.plan import EXACT_STATE_LIMIT
from tasks.engine.runningstats import RadixQuantile, RunningQuantile
from tests.engine.factories import write_broden


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2, padding=1), nn.ReLU(),
    ).eval()


@pytest.fixture
def broden(tmp_path):
    # Two image sizes: batches of each size map to their own rows of the spill.
    fake = write_broden(tmp_path / "broden", n_images=23, sizes=[(16, 8), (16, 8), (20, 10)], seed=7)
    return open_dataset(f"broden:{fake.root}")


def _options(**kw) -> DissectOptions:
    base = dict(layers=["1", "3"], top_k=3, quantile=0.02, batch_size=4, progress_bar=False, render_k=2)
    return DissectOptions(**(base | kw))


def _outputs(out) -> dict:
    """Every output file's content, keyed by path relative to ``out`` (summary.json aside)."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "summary.json":
            files[path.relative_to(out).as_posix()] = path.read_bytes()
    return files


def _same_results(a, b) -> None:
    for name in a.layers:
        x, y = a.layers[name], b.layers[name]
        assert np.array_equal(x.thresholds, y.thresholds)
        assert np.array_equal(x.topk_indices, y.topk_indices)
        assert np.array_equal(x.topk_scores, y.topk_scores)
        assert np.array_equal(x.iou, y.iou)


def test_spill_and_recompute_give_identical_tallies_thresholds_top_k_and_pictures(broden, tmp_path):
    spilled = dissect(_net(), broden, _options(spill="always"), tmp_path / "spill")
    recomputed = dissect(_net(), broden, _options(spill="never"), tmp_path / "again")
    assert spilled.plan["spilled"] == ["1", "3"] and spilled.plan["passes"] == 1
    assert recomputed.plan["recomputed"] == ["1", "3"] and recomputed.plan["passes"] == 2
    assert recomputed.plan["measured_spill_bytes"] == 0
    _same_results(spilled, recomputed)
    assert _outputs(tmp_path / "spill") == _outputs(tmp_path / "again")  # tally, topk, exemplar JPEGs


def test_a_mixed_plan_spills_what_fits_and_recomputes_the_rest(broden, tmp_path):
    full = plan_dissection(_net(), broden, _options())
    small = full.layer("3").spill_bytes_float32
    assert small < full.layer("1").spill_bytes_float32
    mixed = dissect(_net(), broden, _options(disk_budget=small + 10), tmp_path / "mixed")
    assert mixed.plan["spilled"] == ["3"] and mixed.plan["recomputed"] == ["1"]
    reference = dissect(_net(), broden, _options(spill="always"), tmp_path / "ref")
    _same_results(mixed, reference)
    summary = json.loads((tmp_path / "mixed" / "1" / "summary.json").read_text())
    assert summary["plan"]["layers"][0]["method"] == "recompute"
    assert summary["plan"]["layers"][1]["method"] == "spill"


def test_the_planner_estimate_is_within_ten_percent_of_the_measured_spill(broden, tmp_path):
    result = dissect(_net(), broden, _options(spill="always", render=False), tmp_path / "out")
    estimate, measured = result.plan["disk_bytes"], result.plan["measured_spill_bytes"]
    # Allocated blocks round up to 4 kB per file, which dominates on a set this small; the
    # estimate must still be close to the bytes actually written.
    files = 4 + 1  # maps of 2 layers x 2 image sizes, and the labels
    assert abs(measured - estimate) <= 0.10 * estimate + files * 4096
    assert estimate == sum(lp["spill_bytes"] for lp in result.plan["layers"]) + result.plan["labels_bytes"]


def test_the_planner_estimate_matches_a_larger_spill_within_ten_percent(tmp_path):
    fake = write_broden(tmp_path / "b", n_images=60, size=32, seg_size=16, seed=1)
    dataset = open_dataset(f"broden:{fake.root}")
    result = dissect(_net(), dataset, _options(spill="always", render=False, batch_size=8), tmp_path / "out")
    estimate, measured = result.plan["disk_bytes"], result.plan["measured_spill_bytes"]
    assert estimate > 200_000
    assert abs(measured - estimate) <= 0.10 * estimate


def test_a_budget_too_small_for_any_plan_fails_before_the_sweep(broden, tmp_path):
    seen = []
    with pytest.raises(EngineError, match="no plan fits a memory budget of 100 B.*--memory-budget"):
        dissect(_net(), broden, _options(memory_budget=100), tmp_path / "m", progress=lambda s, f: seen.append(s))
    with pytest.raises(EngineError, match="spilling every layer needs .* budget is 1.00 kB"):
        dissect(_net(), broden, _options(spill="always", disk_budget="1kB"), tmp_path / "d",
                progress=lambda s, f: seen.append(s))
    assert seen == []  # no batch was swept
    assert not (tmp_path / "m" / "1").exists()


class _Killed(Exception):
    pass


def _kill_after(stage: str, batches: int):
    count = {"n": 0}

    def progress(s: str, fraction: float) -> None:
        if s == stage:
            count["n"] += 1
            if count["n"] > batches:
                raise _Killed

    return progress


@pytest.mark.parametrize("spill, "
                         "stage", [("always", "sweep"), ("never", "sweep"), ("never", "counts"), ("auto", "counts")])
def test_a_run_killed_mid_stage_resumes_from_its_last_chunk_and_equals_an_uninterrupted_run(
        broden, tmp_path, spill, stage):
    opts = _options(spill=spill, checkpoint_every=2, resume=True, count_threads=1)
    whole = dissect(_net(), broden, _options(spill=spill), tmp_path / "whole")
    with pytest.raises(_Killed):
        # Killed while batch 2 (in the second chunk of 2) was being reported.
        dissect(_net(), broden, opts, tmp_path / "out", progress=_kill_after(stage, 2))
    cache = tmp_path / "out" / ".dissect-cache"
    assert (cache / f"{stage}.pt").is_file()
    state = torch.load(cache / f"{stage}.pt", weights_only=False)
    assert state["next"] == 2  # the chunk of 2 batches finished before the kill
    swept = []
    resumed = dissect(_net(), broden, opts, tmp_path / "out", progress=lambda s, f: swept.append(s))
    assert resumed.plan["resumed"] is True
    n_batches = resumed.plan["batches"]
    if stage == "sweep":
        assert swept.count("sweep") == n_batches - 2  # only the batches after the first chunk
    _same_results(whole, resumed)
    assert _outputs(tmp_path / "whole") == _outputs(tmp_path / "out")
    assert not cache.exists()  # a finished run removes its stage files


@pytest.mark.parametrize("threads", [2, 4])  # 6 batches: 3 full rounds of 2, or a round of 4 and one of 2
def test_counting_a_spill_in_threads_equals_counting_it_in_one(broden, tmp_path, threads):
    one = dissect(_net(), broden, _options(spill="always", count_threads=1), tmp_path / "one")
    many = dissect(_net(), broden, _options(spill="always", count_threads=threads), tmp_path / "many")
    assert many.plan["batches"] == 6
    _same_results(one, many)
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "many")  # tally.csv, labels, pictures: the same bytes


def test_counting_in_threads_is_killed_and_resumed_at_a_round_that_holds_every_batch_before_it(broden, tmp_path):
    whole = dissect(_net(), broden, _options(spill="always", count_threads=1), tmp_path / "whole")
    opts = _options(spill="always", checkpoint_every=2, resume=True, count_threads=2)
    rounds = []
    with pytest.raises(_Killed):
        # Rounds of 2 batches; killed as the third round (batches 4 and 5) is reported.
        dissect(_net(), broden, opts, tmp_path / "out", progress=_kill_after("counts", 2))
    state = torch.load(tmp_path / "out" / ".dissect-cache" / "counts.pt", weights_only=False)
    assert state["next"] == 4
    # It holds batches 0-3, no more, no less: the same counts as one thread's checkpoint after batch 3.
    with pytest.raises(_Killed):
        dissect(_net(), broden, _options(spill="always", checkpoint_every=2, resume=True, count_threads=1),
                tmp_path / "serial", progress=_kill_after("counts", 4))
    serial = torch.load(tmp_path / "serial" / ".dissect-cache" / "counts.pt", weights_only=False)
    assert serial["next"] == 4 and state["counts"]["images"] == serial["counts"]["images"]
    for name, layer in serial["counts"]["layers"].items():
        for key in ("truth", "intersect", "activation"):
            assert torch.equal(state["counts"]["layers"][name][key], layer[key])
    resumed = dissect(_net(), broden, opts, tmp_path / "out", progress=lambda s, f: rounds.append(s))
    assert resumed.plan["resumed"] is True
    _same_results(whole, resumed)
    assert _outputs(tmp_path / "whole") == _outputs(tmp_path / "out")


def test_resume_ignores_stage_files_of_different_inputs(broden, tmp_path):
    with pytest.raises(_Killed):
        dissect(_net(), broden, _options(checkpoint_every=1, resume=True), tmp_path / "out",
                progress=_kill_after("sweep", 2))
    other = _options(checkpoint_every=1, resume=True, quantile=0.05)
    result = dissect(_net(), broden, other, tmp_path / "out")
    assert result.plan["resumed"] is False
    _same_results(result, dissect(_net(), broden, _options(quantile=0.05), tmp_path / "fresh"))


def test_the_plan_is_stored_in_summary_json_with_its_estimate(broden, tmp_path):
    dissect(_net(), broden, _options(render=False), tmp_path / "out")
    plan = json.loads((tmp_path / "out" / "3" / "summary.json").read_text())["plan"]
    assert plan["disk_budget"] == 2_000_000_000
    assert {lp["layer"]: lp["map_shapes"] for lp in plan["layers"]} == {"1": [[16, 16], [20, 20]],
                                                                        "3": [[8, 8], [10, 10]]}
    assert plan["layers"][1]["spill_bytes_float32"] == 5 * 4 * (15 * 64 + 7 * 100) + 2 * 128


def test_quantile_with_many_ties_and_selections_equals_torch_quantile():
    torch.manual_seed(3)
    acts = torch.randint(0, 50, (120, 3, 5, 5)).float()  # many equal values at the threshold
    stat = RunningQuantile(0.03, expected_images=120)
    for start in range(0, 120, 7):
        stat.add(acts[start : start + 7])
    expected = torch.quantile(acts.transpose(0, 1).reshape(3, -1), 0.97, dim=1)
    assert torch.equal(stat.result(), expected)
    assert stat.top.shape[1] <= int(np.ceil(0.03 * 120 * 25)) + 2


def test_on_mixed_image_sizes_the_threshold_is_the_exact_quantile_of_every_value(broden, tmp_path):
    import warnings

    model = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "feature map size grew after values were dropped" would be inexact
        result = dissect(model, broden, _options(spill="never", render=False), tmp_path / "out")
    from tasks.engine.datasets import size_grouped_batches

    values = []
    with torch.no_grad():  # the engine's batches, so the convolutions round the same way
        for batch in size_grouped_batches(broden, range(len(broden)), 4):
            acts = model(torch.stack([broden[i].image for i in batch]))
            values.append(acts.transpose(0, 1).reshape(5, -1))
    expected = torch.quantile(torch.cat(values, dim=1), 0.98, dim=1)
    assert np.array_equal(result.layers["3"].thresholds, expected.numpy())


def test_the_radix_threshold_equals_the_exact_one_and_resumes_in_its_second_sweep(broden, tmp_path):
    exact = dissect(_net(), broden, _options(render=False), tmp_path / "exact")
    opts = _options(render=False, threshold_method="radix", spill="never", checkpoint_every=2, resume=True)
    with pytest.raises(_Killed):  # killed during the radix threshold's second sweep
        dissect(_net(), broden, opts, tmp_path / "radix", progress=_kill_after("thresholds", 2))
    assert (tmp_path / "radix" / ".dissect-cache" / "refine.pt").is_file()
    radix = dissect(_net(), broden, opts, tmp_path / "radix")
    assert {lp["layer"]: lp["threshold"] for lp in radix.plan["layers"]} == {"1": "radix", "3": "radix"}
    assert radix.plan["passes"] == 3 and radix.plan["resumed"]
    _same_results(exact, radix)
    spilled = dissect(_net(), broden, _options(render=False, threshold_method="radix", spill="always"), tmp_path / "s")
    assert spilled.plan["passes"] == 1  # the second sweep reads the spill
    _same_results(exact, spilled)


def test_on_a_broden_sized_index_every_resnet18_layer_gets_a_plan_within_the_budgets(tmp_path):
    """63,305 rows (full Broden) pointing at one image: the planner reads no image."""
    from tasks.engine.models import load_model
    from tests.engine.factories import write_csv, write_label_png, write_rgb

    root = tmp_path / "big"
    write_rgb(root / "images" / "a.jpg", np.zeros((224, 224, 3), np.uint8))
    write_label_png(root / "images" / "a_object.png", np.ones((112, 112), np.int64))
    write_csv(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", "object"],
              [["a.jpg", "train", 224, 224, 112, 112, "a_object.png"]] * 63305)
    write_csv(root / "category.csv", ["name", "first", "last", "count", "frequency"], [["object", 1, 1, 1, 1]])
    write_csv(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
              [[1, "thing", "object(1)", 1, 1.0, ""]])
    dataset = open_dataset(f"broden:{root}")
    model = load_model("resnet18", None)
    layers = ["relu", "layer1", "layer2", "layer3", "layer4"]
    plan = plan_dissection(model, dataset, DissectOptions(layers=layers, progress_bar=False))
    by = {lp.layer: lp for lp in plan.layers}
    assert by["layer1"].spill_bytes_float32 == 63305 * 64 * 56 * 56 * 4 + 128  # 50.8 GB
    assert by["layer4"].spill_bytes_float32 == 63305 * 512 * 7 * 7 * 4 + 128  # 6.35 GB
    assert plan.disk_bytes <= 2_000_000_000 and plan.memory_bytes <= 1_000_000_000
    assert by["relu"].threshold == "radix"  # its exact top-m would hold ~13 GB
    assert plan.recomputed  # not everything fits 2 GB of disk
    # layer1's exact state (the kept top 0.5%: 63,305 x 56 x 56 x 0.005 values x 64 units x 4 bytes, plus
    # what is buffered) is past the per-layer limit: radix, bounded; asked for, exact is planned as such.
    kept = 64 * (math.ceil(0.005 * 63305 * 56 * 56) + 2) * 4
    assert kept < by["layer1"].exact_quantile_bytes and by["layer1"].exact_quantile_bytes > EXACT_STATE_LIMIT
    assert by["layer1"].threshold == "radix" and by["layer1"].quantile_bytes == RadixQuantile.memory_bytes(64)
    assert all(lp.threshold == "exact" for lp in plan.layers if lp.exact_quantile_bytes <= EXACT_STATE_LIMIT)
    exact = plan_dissection(model, dataset, DissectOptions(layers=["layer1"], threshold_method="exact",
                                                           progress_bar=False))
    assert exact.layers[0].threshold == "exact"
    assert exact.memory_bytes == by["layer1"].exact_quantile_bytes + by["layer1"].counts_bytes


def test_a_float16_spill_fits_where_float32_would_not_and_keeps_every_label(broden, tmp_path):
    full = plan_dissection(_net(), broden, _options())
    big, small = full.layer("1"), full.layer("3")
    budget = small.spill_bytes_float32 + big.spill_bytes_float16 + full.labels_bytes + 10
    assert budget < small.spill_bytes_float32 + big.spill_bytes_float32 + full.labels_bytes  # float32 cannot spill both
    half = dissect(_net(), broden, _options(cache_dtype="float16", disk_budget=budget), tmp_path / "half")
    dtypes = {lp["layer"]: (lp["method"], lp["dtype"]) for lp in half.plan["layers"]}
    assert dtypes == {"1": ("spill", "float16"), "3": ("spill", "float32")}
    stored = json.loads((tmp_path / "half" / "1" / "summary.json").read_text())["plan"]
    assert stored["layers"][0]["dtype"] == "float16"
    exact = dissect(_net(), broden, _options(spill="always"), tmp_path / "exact")  # float32 spill
    assert half.plan["disk_bytes"] <= budget < exact.plan["disk_bytes"]
    assert half.plan["measured_spill_bytes"] < exact.plan["measured_spill_bytes"]  # allocated blocks on disk
    for name in ("1", "3"):
        a, b = half.layers[name], exact.layers[name]
        # Thresholds and top images come from the live float32 maps; only the counts read the spill.
        assert np.array_equal(a.thresholds, b.thresholds) and np.array_equal(a.topk_indices, b.topk_indices)
        assert [(x.label, x.category) for x in a.labels] == [(x.label, x.category) for x in b.labels]
        assert np.allclose(a.iou, b.iou, atol=0.02)
    # The float32 layer's counts are untouched by its neighbour's float16 spill.
    assert np.array_equal(half.layers["3"].iou, exact.layers["3"].iou)


def test_a_run_killed_while_rendering_has_its_results_on_disk_and_resumes_without_sweeping(broden, tmp_path):
    opts = _options(spill="always", checkpoint_every=2, resume=True)
    whole = dissect(_net(), broden, _options(spill="always"), tmp_path / "whole")
    with pytest.raises(_Killed):
        dissect(_net(), broden, opts, tmp_path / "out", progress=_kill_after("render", 1))
    # The results came first: tally, top images, thresholds and summary are complete already.
    for name in ("tally.csv", "topk.csv", "thresholds.npy", "summary.json"):
        assert (tmp_path / "out" / "3" / name).read_bytes() != b""
    assert (tmp_path / "out" / "3" / "tally.csv").read_bytes() == (tmp_path / "whole" / "3" / "tally.csv").read_bytes()
    seen = []
    resumed = dissect(_net(), broden, opts, tmp_path / "out", progress=lambda s, f: seen.append(s))
    assert resumed.plan["resumed"] is True
    assert "sweep" not in seen and "counts" not in seen and "render" in seen  # only the pictures were left
    _same_results(whole, resumed)
    assert _outputs(tmp_path / "whole") == _outputs(tmp_path / "out")


class _DataDependent(nn.Module):
    """A model the meta device cannot run (it reads a value), so the probe must forward for real."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y * 2 if y.abs().max().item() >= 0 else y


def test_layer_shapes_probed_on_the_meta_device_equal_a_real_forward_pass():
    from tasks.engine.plan import probe_shapes

    sizes = [(16, 8), (20, 10), (33, 17)]
    for model, layers in ((_net(), ["1", "3"]), (_DataDependent().eval(), ["conv"])):
        expected = {name: [] for name in layers}
        with torch.no_grad():
            for h, w in sizes:
                x = torch.zeros(1, 3, h, w)
                outs = {}
                modules = dict(model.named_modules())
                hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n, outs=outs: outs.__setitem__(n, o))
                         for n in layers]
                model(x)
                for hk in hooks:
                    hk.remove()
                for n in layers:
                    expected[n].append(tuple(int(d) for d in outs[n].shape[1:]))
        assert probe_shapes(model, layers, sizes, "cpu") == expected

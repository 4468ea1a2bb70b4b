"""The sanity-check runner end to end on a tiny configuration, checked against plain recomputations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.engine.datasets import BrodenDataset
from tasks.engine.models import load_model
from tasks.engine.sanity import SanityConfig, estimate_minutes, main, run_sanity
from tasks.engine.sanity.pipeline import FULL_BOTH as FULL
from tasks.engine.train import load_mixture_tensors


def tiny_config(**overrides) -> SanityConfig:
    """Seconds on one core: 32 px canvas, 14 px digits, one short epoch, 200 validation images
    (K above 200 is capped)."""
    base = dict(n_train=120, n_val=200, epochs=1, seeds=2, canvas=32, digit_size=14, variants=["baseline", "wide"],
                usefulness=True, usefulness_seeds=1, workers=1, top_k=2, device="cpu", batch_size=32,
                lr=3e-3, network="mixturenet", seed_epochs=1)
    return SanityConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("sanity")
    return run_sanity(tiny_config(useful_n_train=100, useful_n_val=150), out), out


def _reference_ap(scores: np.ndarray, positive: np.ndarray) -> float:
    """scikit-learn's AP (tied scores form one threshold, as the report's AP does)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(positive, scores))


def _plain_forward(model, images: torch.Tensor):
    """conv3 spatial max per unit and logits, with the layers called one by one (no hooks)."""
    from tasks.engine.datasets import NETDISSECT_MEAN, NETDISSECT_STD

    x = (images.float() / 255 - torch.tensor(NETDISSECT_MEAN).view(1, 3, 1,
                                                                   1)) / torch.tensor(NETDISSECT_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        h = model.pool2(model.conv2(model.pool1(model.conv1(x))))
        c3 = model.conv3(h)
        logits = model.fc(model.pool3(c3).flatten(1))
    return c3.amax(dim=(2, 3)).numpy(), logits.numpy()


def test_the_report_holds_every_variant_seed_and_the_usefulness_runs(tiny_report):
    report, out = tiny_report
    ids = sorted(r["id"] for r in report["runs"])
    assert ids == ["baseline_s0", "baseline_s1", "useful_baseline_s0", "wide_s0", "wide_s1"]
    section = report["networks"]["mixturenet"]
    assert list(report["networks"]) == ["mixturenet"]
    assert section["setting"]["classes"] == 45 and section["usefulness"]["classes"] == 28
    assert section["usefulness"]["redundant"] == [8, 9]
    wide = next(r for r in report["runs"] if r["id"] == "wide_s0")
    assert [L["num_units"] for L in wide["layers"].values()] == [10, 20, 30]
    assert report["source"] == "digits" and "scikit-learn" in report["source_text"]
    saved = json.loads((out / "report.json").read_text())
    baseline = section["variants"]["baseline"]
    assert saved["networks"]["mixturenet"]["variants"]["baseline"]["accuracy"] == baseline["accuracy"]
    for name in ("report.md", "report.html"):
        assert "Best unit per digit" in (out / name).read_text()
    # The usefulness experiment's own sizes are in its run and said in the report; so is why P@K needs many images.
    useful = next(r for r in report["runs"] if r["experiment"] == "usefulness")
    assert (useful["n_train"], useful["n_val"]) == (100, 150)
    text = (out / "report.md").read_text()
    assert "Trained on 100 images, measured on 150 validation images (the variants: 120 / 200;" in text
    assert "P@700 = 0.99 needs at least 693 images showing a 0" in text and "precision_probe" in text


def test_accuracy_and_ap_match_a_plain_recomputation_from_the_saved_network(tiny_report):
    report, out = tiny_report
    run = next(r for r in report["runs"] if r["id"] == "baseline_s1")
    model = load_model("mixturenet", out / run["checkpoint"])
    images, targets, _ = load_mixture_tensors(out / run["val_dir"])
    scores, logits = _plain_forward(model, images)
    assert run["val_accuracy"] == pytest.approx(float((logits.argmax(1) == targets.numpy()).mean()))
    presence = BrodenDataset(out / run["val_dir"]).image_level_presence()
    for unit in (0, 7):
        for digit in (0, 4, 9):
            got = run["layers"]["conv3"]["units"][unit]["ap"][digit]
            assert got == pytest.approx(_reference_ap(scores[:, unit], presence[:, digit]), abs=1e-6)
    accs = [r["val_accuracy"] for r in report["runs"] if r["experiment"] == "variants" and r["variant"] == "baseline"]
    baseline = report["networks"]["mixturenet"]["variants"]["baseline"]
    assert baseline["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert baseline["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    # The best-unit table's spread is over the same baseline seeds.
    best0 = report["networks"]["mixturenet"]["best_units_over_seeds"][0]
    aps = [max(u["ap"][0] for L in r["layers"].values() for u in L["units"])
           for r in report["runs"] if r["experiment"] == "variants" and r["variant"] == "baseline"]
    assert best0["digit"] == 0 and best0["ap"]["values"] == pytest.approx(aps)


def test_the_numbers_come_from_the_data_changing_it_changes_them(tiny_report, tmp_path):
    report, _ = tiny_report
    other = run_sanity(tiny_config(seeds=1, variants=["baseline"], usefulness=False, n_train=160), tmp_path)
    a = next(r for r in report["runs"] if r["id"] == "baseline_s0")
    b = other["runs"][0]
    first_ap = [x["layers"]["conv3"]["units"][0]["ap"] for x in (a, b)]
    assert a["val_accuracy"] != b["val_accuracy"] or first_ap[0] != first_ap[1]
    assert other["networks"]["mixturenet"]["variants"]["baseline"]["accuracy"]["values"] == [b["val_accuracy"]]


def test_plots_are_png_files_named_in_the_report(tiny_report):
    report, out = tiny_report
    for key in ("mixturenet_precision_at_k", "mixturenet_precision_at_recall", "variants_accuracy",
                "mixturenet_usefulness",
                "mixturenet_top_images_best", "mixturenet_top_images_conv3"):
        with Image.open(out / report["plots"][key]) as im:
            assert im.format == "PNG" and im.width > 100
    assert all((out / f).is_file() for f in report["files"])


def test_both_networks_train_on_the_same_data_and_the_seed_design_is_the_plain_one(tmp_path):
    report = run_sanity(tiny_config(network="both", seeds=1, variants=["baseline"], usefulness=False), tmp_path)
    runs = {r["id"]: r for r in report["runs"]}
    assert sorted(runs) == ["baseline_s0", "seednet_baseline_s0"]
    ours, seed = runs["baseline_s0"], runs["seednet_baseline_s0"]
    assert ours["design"] == "mixturenet" and seed["design"] == "seed"
    assert ours["train_dir"] == seed["train_dir"] and ours["val_dir"] == seed["val_dir"]
    assert "BatchNorm" in ours["network"] and "BatchNorm" not in seed["network"] and "stride" not in seed["network"]
    assert seed["recipe"]["init"] == "kaiming" and seed["recipe"]["zero_classifier"]
    model = load_model("mixturenet", tmp_path / seed["checkpoint"])
    assert model.config["design"] == "seed"
    assert list(report["networks"]) == ["mixturenet", "seed"]
    # Every claim is judged once per network, in the report's words.
    networks = {c["network"] for c in report["claims"]}
    assert len(networks) == 2
    assert {c["verdict"] for c in report["claims"]} <= {"reproduced", "not reproduced", "inconclusive"}
    # The false-positive table names, per digit, the digits shown by the top images that miss it.
    fp = seed["false_positives"]["0"]["top"]["100"]
    assert fp["n_false"] >= 0 and len(fp["shows"]) == 10
    page = (tmp_path / "report.html").read_text()
    assert "the seed&#x27;s network" in page and "Where precision@K is lost" in page


def test_the_estimate_grows_with_the_work_and_fits_the_budgets():
    full, quick = SanityConfig(), SanityConfig.quick_config()
    assert estimate_minutes(quick) < 2 < estimate_minutes(full) <= 20
    both = SanityConfig(network="both")
    assert estimate_minutes(both) > estimate_minutes(SanityConfig(network="seed")) > estimate_minutes(full)
    assert estimate_minutes(SanityConfig(seeds=4)) > estimate_minutes(full)
    assert estimate_minutes(full, workers=1) == pytest.approx(2 * estimate_minutes(full, workers=2))


def test_the_command_line_rejects_an_unknown_variant(capsys):
    with pytest.raises(SystemExit):
        main(["--variants", "deeper", "--out", "/nonexistent"])
    assert "unknown variant" in capsys.readouterr().err


def test_ablation_loses_exactly_the_images_a_unit_decides_and_groups_classes_by_digit():
    from tasks.engine.models import MixtureNet
    from tasks.engine.sanity.measure import ablation_table, class_group_drop

    torch.manual_seed(0)
    model = MixtureNet(num_classes=3).eval()
    images = torch.randn(40, 3, 32, 32)
    with torch.no_grad():
        pooled = model.pool3(model.conv3(model.pool2(model.conv2(model.pool1(model.conv1(images)))))).flatten(1)
        cut = float(pooled[:, 0].median())
        # Class 1 wins exactly when conv3 unit 0's pooled value exceeds `cut`; class 0 otherwise; class 2 never.
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([0.0, -cut * 100, -1e6]))
        model.fc.weight[1, 0] = 100.0
        targets = model(images).argmax(1)
    ones = int((targets == 1).sum())
    assert 0 < ones < 40
    table = ablation_table(model, images, targets, ["conv3"], num_classes=3, device="cpu")
    abl = table["conv3"]
    assert table["_accuracy"] == 1.0
    assert abl["per_unit_drop"][0] == pytest.approx(ones / 40)
    assert np.allclose(abl["per_unit_drop"][1:], 0.0)
    # Images of class 1 all fail without unit 0, class 0 images never do: the group {0, 1} loses ones/40.
    assert class_group_drop(abl, 0, [1]) == pytest.approx(1.0)
    assert class_group_drop(abl, 0, [0]) == pytest.approx(0.0)
    assert class_group_drop(abl, 0, [0, 1]) == pytest.approx(ones / 40)
    assert class_group_drop(abl, 0, [2]) is None  # no image of class 2: no figure rather than 0


def test_the_estimate_is_the_configs_arithmetic_over_the_measured_per_image_costs():
    from tasks.engine.sanity.pipeline import COST_MS

    def seed_only(epochs: int) -> SanityConfig:
        return SanityConfig(network="seed", seeds=2, seed_epochs=epochs, variants=["baseline", "wide"],
                            usefulness=False)

    # One more epoch of the seed's network: 2 seeds x (baseline + wide, the wide one dearer) x 20,000 images.
    per_epoch_ms = 2 * 20000 * COST_MS["train"]["seed"] * (1 + COST_MS["wide_factor"]["seed"])
    assert estimate_minutes(seed_only(5), workers=2) - estimate_minutes(seed_only(4), workers=2) == pytest.approx(
        per_epoch_ms / 1000 / 60 / 2)
    # The seed recipe's epochs come from train.RECIPES when the configuration leaves them unset.
    from tasks.engine.train import RECIPES

    assert estimate_minutes(seed_only(RECIPES["seed"].epochs)) == pytest.approx(
        estimate_minutes(SanityConfig(network="seed", seeds=2, variants=["baseline", "wide"], usefulness=False)))


def test_the_full_run_of_both_networks_keeps_every_variant_and_fits_the_20_minute_budget():
    from tasks.engine.sanity.pipeline import FULL_BOTH, VARIANTS, _data_specs, _jobs

    config = SanityConfig.full_config(network="both")
    assert estimate_minutes(config, workers=2) < 20 < estimate_minutes(SanityConfig(network="both"), workers=2)
    jobs = _jobs(config, Path("."), {n: "" for n in _data_specs(config)}, "cpu", None)
    for design in ("mixturenet", "seed"):
        mine = [j for j in jobs if j["design"] == design]
        for variant in VARIANTS:
            assert len([j for j in mine if j["experiment"] == "variants" and j["variant"] == variant]) >= 2
        assert [j["n_train"] for j in mine if j["experiment"] == "usefulness"] == [FULL_BOTH["useful_n_train"]]
    # The variants keep the seed's 20,000 training images and the 10,000 validation images precision@700 needs.
    assert {(j["n_train"], j["n_val"]) for j in jobs if j["experiment"] == "variants"} == {(20000, 10000)}
    # Only --network both takes these settings; explicit options still win.
    assert SanityConfig.full_config(network="seed") == SanityConfig(network="seed")
    assert SanityConfig.full_config(network="both", seeds=3).seeds == 3
    from tasks.engine.sanity.pipeline import add_cli_arguments, config_from_args
    import argparse

    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    assert config_from_args(parser.parse_args(["--network", "both"])) == config
    assert config_from_args(parser.parse_args(["--network", "both", "--epochs", "3"])).epochs == 3
    # The quick run of both networks stays a 2-minute smoke test.
    assert estimate_minutes(SanityConfig.quick_config(network="both"), workers=2) < 2


def test_the_usefulness_experiments_own_sizes_enter_the_estimate_by_the_configs_arithmetic():
    from tasks.engine.sanity.pipeline import COST_MS

    def useful(n_train: int, n_val: int) -> SanityConfig:
        return SanityConfig.full_config(network="both", useful_n_train=n_train, useful_n_val=n_val)

    # 1,000 more usefulness training images: made once, trained by one seed of each design (baseline width).
    epochs = {"mixturenet": FULL["epochs"], "seed": FULL["seed_epochs"]}
    per_image = COST_MS["make_image"] + sum(epochs[d] * COST_MS["train"][d] for d in epochs)
    assert estimate_minutes(useful(11000, 4000), workers=2) - estimate_minutes(useful(10000, 4000), workers=2) == \
        pytest.approx(1000 * per_image / 1000 / 60 / 2)
    # 1,000 more usefulness validation images: made once, scored and swept by each design's run.
    per_val = COST_MS["make_image"] + sum(2 * COST_MS["forward"][d] + COST_MS["dissect_image"] for d in epochs)
    assert estimate_minutes(useful(10000, 5000), workers=2) - estimate_minutes(useful(10000, 4000), workers=2) == \
        pytest.approx(1000 * per_val / 1000 / 60 / 2)


def test_a_run_whose_iou_uses_part_of_the_validation_set_overflows_the_threshold_buffer_and_reports(
    tmp_path, pending_at_state
):
    """The full run's path (measure_run -> collect_stats -> state) at CI size: IoU on fewer images than the
    validation set goes through the shard API, and 542 validation images in sweeps of 256 leave the last
    batch's few newcomers buffered in an overflowed kept set until the state is read, outside inference mode."""
    report = run_sanity(
        tiny_config(seeds=1, variants=["baseline"], usefulness=False, n_val=542, iou_images=100), tmp_path
    )
    assert any(dropped and pending for dropped, pending, _ in pending_at_state), "the data must take that path"
    run = report["runs"][0]
    assert (tmp_path / "report.md").is_file() and run["val_accuracy"] > 0
    model = load_model("mixturenet", tmp_path / run["checkpoint"])
    images, _, _ = load_mixture_tensors(tmp_path / run["val_dir"])
    from tasks.engine.sanity.measure import normalised

    with torch.no_grad():  # the sweep's own batches of 256, so the convolutions round the same way
        conv3 = torch.cat(
            [
                model.conv3(model.pool2(model.conv2(model.pool1(model.conv1(normalised(images[s : s + 256]))))))
                for s in range(0, len(images), 256)
            ]
        )
    expected = torch.quantile(conv3.transpose(0, 1).reshape(conv3.shape[1], -1), 1 - 0.005, dim=1)
    saved = np.load((tmp_path / run["checkpoint"]).parent / "dissect" / "conv3" / "thresholds.npy")
    assert np.array_equal(saved, expected.numpy())

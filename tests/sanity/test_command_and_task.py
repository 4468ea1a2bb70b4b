"""`manage.py sanity_check` and the Celery task run the engine and store the report row (tiny settings)."""
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from units.sanity.models import SanityReport
from units.sanity.services import report_out_dir

TINY_ARGS = ["--seeds", "1", "--n-train", "60", "--n-val", "80", "--epochs", "1", "--variants", "baseline",
             "--no-usefulness", "--workers", "1", "--top-k", "2", "--device", "cpu", "--iou-images", "40",
             "--ablation-images", "40"]


def test_the_command_runs_the_experiment_and_stores_a_succeeded_report(db, media_root, tmp_path, capsys):
    out = tmp_path / "out"
    call_command("sanity_check", *TINY_ARGS, "--out", str(out))
    report = SanityReport.objects.get()
    assert report.status == SanityReport.Status.SUCCEEDED and report.progress == 1.0
    assert report_out_dir(report) == out.resolve()
    assert report.json["runs"][0]["id"] == "baseline_s0"
    assert report.json["runs"][0]["n_ablation"] == 40 and report.json["runs"][0]["n_iou"] == 40
    assert "report.html" in report.files and (out / "report.html").is_file()
    assert report.params["n_train"] == 60 and report.source == "digits"
    assert f"/sanity/{report.pk}/" in capsys.readouterr().out


def test_the_command_refuses_a_missing_idx_path_and_writes_nothing(db, media_root):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("sanity_check", "--source", "idx:/no/such/mnist", *TINY_ARGS)
    assert not SanityReport.objects.exists()


def test_the_task_runs_a_pending_report_once_and_leaves_a_finished_one_alone(db, media_root):
    from tasks.engine.sanity import SanityConfig
    from tasks.sanity import run_sanity_report

    config = SanityConfig(seeds=1, n_train=60, n_val=80, epochs=1, variants=["baseline"], usefulness=False, workers=1,
                          top_k=2, device="cpu", iou_images=40, ablation_images=40)
    from dataclasses import asdict

    report = SanityReport.objects.create(params=asdict(config), source="digits")
    report.out_dir = f"sanity/{report.pk}"
    report.save(update_fields=["out_dir"])
    run_sanity_report.delay(report.pk)
    report.refresh_from_db()
    assert report.status == SanityReport.Status.SUCCEEDED
    assert Path(media_root / "sanity" / str(report.pk) / "report.json").is_file()
    finished = report.finished_at
    run_sanity_report.delay(report.pk)  # a redelivered task finds the report finished
    report.refresh_from_db()
    assert report.finished_at == finished


def test_an_unexpected_engine_failure_marks_the_report_failed_with_a_message(db, media_root, monkeypatch):
    from units.sanity.services import sanity_report_run

    def boom(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr("tasks.engine.sanity.run_sanity", boom)
    report = SanityReport.objects.create(params={"seeds": 1}, source="digits", out_dir="sanity/x")
    report = sanity_report_run(report_id=report.pk)
    assert report.status == SanityReport.Status.FAILED and "worker died" in report.error_message

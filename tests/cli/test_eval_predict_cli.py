"""`detcli eval` and `detcli predict` as a user runs them: tables, files, and exit 2 with one
message (no traceback) for each bad input; Ctrl-C during eval keeps the streamed results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from evaluation.eval_helpers import REPO, config_text, trained_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_checkpoint(tmp_path_factory)


@pytest.fixture
def ckpt(trained, tmp_path):
    """The trained checkpoint copied into this test's folder (default outputs land next to it)."""
    return shutil.copy(trained.checkpoint, tmp_path / "model.pth")


def test_eval_prints_the_12_numbers_and_per_class_ap_and_writes_files(cli, trained, ckpt, tmp_path):
    result = cli("eval", str(trained.config), str(ckpt), "--plot", str(tmp_path / "pr"))
    assert result.code == 0, result.err
    for label in ("AP @[IoU=0.50:0.95]", "AP @[IoU=0.75]", "AR maxDets=100", "AR large"):
        assert label in result.out
    for name in trained.classes:
        assert name in result.out
    rows = json.loads((tmp_path / "results_val.bbox.json").read_text())
    assert rows and set(rows[0]) == {"image_id", "category_id", "bbox", "score"}
    metrics = json.loads((tmp_path / "metrics_val.json").read_text())
    assert set(metrics["metrics"]) >= {"bbox_mAP", "bbox_AR_l@100"}
    assert [c["name"] for c in metrics["classes"]] == list(trained.classes)
    assert len(list((tmp_path / "pr").glob("pr_*.png"))) == 3
    # scoring the written results file again gives the same numbers
    again = cli("eval", str(trained.config), str(tmp_path / "results_val.bbox.json"))
    assert again.code == 0, again.err
    assert json.loads((tmp_path / "metrics_val.json").read_text())["metrics"] == metrics["metrics"]


def test_eval_format_only_csv_on_the_unannotated_test_split(cli, trained, ckpt, tmp_path):
    out = tmp_path / "submission.csv"
    result = cli(
        "eval", str(trained.config), str(ckpt), "--split", "test", "--format-only",
        "--format", "csv", "--out", str(out), "--batch-size", "4",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "AP @" not in result.out  # nothing scored
    lines = out.read_text().splitlines()
    assert lines[0] == "PredictionString,image_id" and len(lines) == 9
    assert lines[1].split(",")[-1].endswith(".png")


def test_eval_bad_inputs_exit_2_with_one_message(cli, trained, ckpt, tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"image_id": 4242, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 1}]))  # fmt: skip
    cases = [
        ((str(tmp_path / "missing.pth"),), "does not exist"),
        ((str(corrupt),), "Cannot read checkpoint"),
        ((str(wrong),), "is for a different dataset"),
        ((str(ckpt), "--set", "model.roi_head.bbox_head.num_classes=2", "--set",
          "classes=[square, circle]"), "trained for 3 classes"),
        ((str(ckpt), "--fp16", "--device", "cpu"), "--fp16 runs on CUDA GPUs only"),
        ((str(ckpt), "--split", "test"), "--format-only"),
        ((str(ckpt), "--tta", "--tta-scale", "big"), "WIDTHxHEIGHT"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli("eval", str(trained.config), *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err and "Traceback" not in result.err, (args, result.err)


def test_eval_tta_reports_the_merge(cli, trained, ckpt, tmp_path):
    result = cli("eval", str(trained.config), str(ckpt), "--tta", "--tta-merge", "wbf")
    assert result.code == 0, result.err
    assert "TTA merged by wbf" in result.out


def test_predict_folder_and_glob_writes_json_and_png_and_reports_unreadable(
    cli, trained, ckpt, tmp_path
):
    folder = tmp_path / "in"
    folder.mkdir()
    for src in sorted((trained.data_root / "val").glob("*.png"))[:3]:
        shutil.copy(src, folder / src.name)
    (folder / "zz_broken.png").write_bytes(b"broken")
    out = tmp_path / "out"
    result = cli(
        "predict", str(trained.config), str(ckpt), str(folder), str(folder / "00000[0-1].png"),
        "--out", str(out), "--score-thr", "0.1", "--batch-size", "2",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "skipped:" in result.err and "zz_broken.png" in result.err
    assert "3 images predicted" in result.out and "1 skipped" in result.out
    assert sorted(p.name for p in out.glob("*.json")) == [
        "000000.json", "000001.json", "000002.json"
    ]  # fmt: skip
    assert len(list(out.glob("*.png"))) == 3
    record = json.loads((out / "000001.json").read_text())
    assert all(d["score"] >= 0.1 for d in record["detections"])


def test_predict_bad_inputs_exit_2(cli, trained, ckpt, tmp_path):
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "only_broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"nope")
    cases = [
        ((str(ckpt), str(tmp_path / "empty")), "holds no images"),
        ((str(ckpt), str(broken)), "None of the 1 input images could be read"),
        ((str(tmp_path / "missing.pth"), str(broken)), "does not exist"),
        ((str(ckpt), str(broken), "--fp16", "--device", "cpu"), "--fp16 runs on CUDA GPUs"),
    ]
    for args, message in cases:
        result = cli("predict", str(trained.config), *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err and "Traceback" not in result.err, (args, result.err)


def test_ctrl_c_during_eval_keeps_the_results_streamed_so_far(trained, tmp_path):
    """A real SIGINT to `python -m detcli eval`: exit 130, the partial file keeps every image
    done (one JSON line each), and no half-written final results file. On a terminal
    (FORCE_COLOR makes rich treat the pipe as one) a progress bar counts the images."""
    from detcli.data.synthetic import write_shapes_coco

    write_shapes_coco(tmp_path, num_images=48, image_size=128, split="val", seed=9)
    shutil.copy(trained.data_root / "test.json", tmp_path / "test.json")
    config = tmp_path / "cfg.yaml"
    config.write_text(config_text(tmp_path), encoding="utf-8")
    out = tmp_path / "r.bbox.json"
    partial = tmp_path / "r.bbox.json.partial.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "FORCE_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "detcli", "eval", str(config), str(trained.checkpoint),
         "--out", str(out), "--batch-size", "1", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.is_file() and len(partial.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and str(partial) in err and "Traceback" not in err
    lines = [json.loads(line) for line in partial.read_text().splitlines()]
    assert 2 <= len(lines) < 48
    assert f"after {len(lines)} of 48 images" in err
    ids = [line["image_id"] for line in lines]
    assert ids == sorted(ids) and set(lines[0]) == {"image_id", "boxes", "scores", "labels"}
    assert not out.exists()
    assert "eval val" in err and "/48" in err  # the progress bar: images done / total

"""Scoring and predicting that would give a wrong answer without a word (issue 14): ids from 0,
a results file from another dataset, 16-bit PNGs and decompression bombs in `detcli predict`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_bomb_png

from .eval_helpers import SHAPES_CONFIG


@pytest.fixture
def shapes_val(tmp_path: Path) -> Path:
    """A data_root with 6 synthetic val images (128 px, 3 classes) and their COCO json."""
    from detcli.data.synthetic import write_shapes_coco

    write_shapes_coco(tmp_path, num_images=6, image_size=128, split="val", seed=3)
    return tmp_path


def _results_from_gt(gt: dict) -> list[dict]:
    """Detections of every ground-truth box (slightly off, scores spread), plus false alarms."""
    rng = np.random.default_rng(0)
    rows = []
    for k, ann in enumerate(gt["annotations"]):
        x, y, w, h = ann["bbox"]
        jitter = rng.uniform(-1.5, 1.5, 2).tolist()
        score = float(rng.uniform(0.3, 1.0))
        rows.append(
            {"image_id": ann["image_id"], "category_id": ann["category_id"],
             "bbox": [x + jitter[0], y + jitter[1], w, h], "score": score}
        )  # fmt: skip
        if k % 3 == 0:  # a false alarm that outranks some true boxes
            rows.append(
                {"image_id": ann["image_id"], "category_id": ann["category_id"],
                 "bbox": [1, 1, 8, 8], "score": 0.6}
            )  # fmt: skip
    return rows


def _score(cli, data_root: Path, results: Path) -> dict:
    result = cli("eval", str(SHAPES_CONFIG), str(results), "--set", f"data_root={data_root}")
    assert result.code == 0, result.err
    return json.loads(results.with_name("metrics_val.json").read_text())["metrics"]


def test_annotation_ids_from_0_score_like_ids_from_1(cli, shapes_val, tmp_path):
    gt_path = shapes_val / "val.json"
    gt = json.loads(gt_path.read_text())
    results = tmp_path / "r" / "results.json"
    results.parent.mkdir()
    results.write_text(json.dumps(_results_from_gt(gt)))
    for k, ann in enumerate(gt["annotations"]):
        ann["id"] = k + 1
    gt_path.write_text(json.dumps(gt))
    from_one = _score(cli, shapes_val, results)
    for ann in gt["annotations"]:
        ann["id"] -= 1  # Roboflow's numbering: 0, 1, 2, ...
    gt_path.write_text(json.dumps(gt))
    from_zero = _score(cli, shapes_val, results)
    assert from_zero == from_one
    assert 0.3 < from_one["bbox_mAP_50"] < 1.0  # a score that a lost match would change


def test_results_file_of_another_dataset_is_refused_without_a_score(cli, shapes_val, tmp_path):
    gt = json.loads((shapes_val / "val.json").read_text())
    rows = _results_from_gt(gt)
    # another dataset with the same image ids (1..6) and category ids, but 640x480 images
    other = [dict(r, bbox=[300.0 + r["bbox"][0], 200.0, 90.0, 70.0]) for r in rows[:3]]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(rows[3:] + other))
    result = cli("eval", str(SHAPES_CONFIG), str(path), "--set", f"data_root={shapes_val}")
    assert result.code == 2
    err = " ".join(result.err.split())
    assert f"{path} does not fit" in err and "3 of" in err and "beyond their image" in err
    assert "mAP" not in result.out and not (tmp_path / "metrics_val.json").exists()

    # NaN scores, ids beyond 64-bit: refused with a message, never scored
    for bad in (dict(rows[0], score=float("nan")), dict(rows[0], image_id=2**70)):
        path.write_text(json.dumps([*rows[1:], bad]))
        result = cli("eval", str(SHAPES_CONFIG), str(path), "--set", f"data_root={shapes_val}")
        assert result.code == 2 and "mAP" not in result.out
        assert f"Results file {path}" in " ".join(result.err.split())


def test_predict_on_16_bit_png_and_a_decompression_bomb(cli, trained, tmp_path):
    source = sorted((trained.data_root / "val").iterdir())[0]
    gray = np.asarray(Image.open(source).convert("L"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(gray).save(inputs / "a_8bit.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(inputs / "b_16bit.png")
    write_bomb_png(inputs / "c_bomb.png")
    out = tmp_path / "out"
    result = cli(
        "predict", str(trained.config), str(trained.checkpoint), str(inputs), "--out", str(out),
        "--score-thr", "0.0",
    )  # fmt: skip
    assert result.code == 0, result.err
    text = " ".join((result.out + result.err).split())
    assert "c_bomb.png" in text and "declares 30000x30000" in text
    eight = json.loads((out / "a_8bit.json").read_text())
    sixteen = json.loads((out / "b_16bit.json").read_text())
    assert sixteen == {**eight, **{k: v for k, v in sixteen.items() if "file" in k}}
    assert (out / "b_16bit.png").is_file() and not (out / "c_bomb.json").exists()

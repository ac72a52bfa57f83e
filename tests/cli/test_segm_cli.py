"""`detcli eval` and `detcli predict` with a mask model, end to end on real files: the segm
results json, scored by pycocotools here, gives the numbers detcli printed; predict's json
carries each mask as RLE.

The model is a stand-in that predicts known masks at the original image size (what a mask
head's paste-back gives): these tests pin evaluation and output, not a network.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re

import pytest
import torch

from detcli.evaluation import rles_to_masks
from evaluation.eval_helpers import SHAPES_CONFIG
from evaluation.mask_data import (
    CLASSES,
    HEIGHT,
    WIDTH,
    MaskPredictor,
    shifted_detections,
    write_mask_coco,
)


@pytest.fixture
def mask_run(tmp_path, monkeypatch):
    """A config on the tiny mask set with `metric: [bbox, segm]`; the stand-in mask model is
    what 'loading the checkpoint' gives."""
    from pycocotools.coco import COCO

    written = write_mask_coco(tmp_path / "data")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(written.ann_file))
    config = tmp_path / "mask.yaml"
    config.write_text(
        f"_base_: {SHAPES_CONFIG}\n"
        f"data_root: {tmp_path / 'data'}\n"
        f"classes: {list(CLASSES)}\n"
        "data:\n"
        "  val: {ann_file: '${data_root}/masks.json', img_prefix: '${data_root}/images'}\n"
        "evaluation: {interval: 1, metric: [bbox, segm], save_best: bbox_mAP}\n",
        encoding="utf-8",
    )

    def load(settings, checkpoint, device=None, dataset_classes=None):
        return MaskPredictor(coco).to(device), {}

    # the modules, not the functions of the same names `detcli.inference` exports
    for module in ("detcli.inference.evaluate", "detcli.inference.predict"):
        monkeypatch.setattr(importlib.import_module(module), "load_detector", load)
    return config, coco, written


def _row(out: str, label: str) -> list[float]:
    line = next(line for line in out.splitlines() if label in line)
    return [float(v) for v in re.findall(r"\d\.\d{3}", line)]


def _pycocotools_segm_stats(coco, results_file):
    from pycocotools.cocoeval import COCOeval

    rows = json.loads(results_file.read_text())  # as written: COCO's segm format, no bbox
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco, coco.loadRes(rows), "segm")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def test_eval_prints_the_segm_numbers_pycocotools_gives_its_results_file(cli, mask_run, tmp_path):
    config, coco, _ = mask_run
    plots = tmp_path / "plots"
    result = cli("eval", str(config), str(tmp_path / "fake.pth"), "--plot", str(plots))
    assert result.code == 0, result.out + result.err
    segm_file = tmp_path / "results_val.segm.json"
    assert f"segm results: {segm_file}" in result.out.replace("\n", "")
    stats = _pycocotools_segm_stats(coco, segm_file)
    assert 0.05 < stats[0] < 0.9
    bbox_ap, segm_ap = _row(result.out, "AP @[IoU=0.50:0.95]")
    assert segm_ap == pytest.approx(stats[0], abs=5e-4)  # printed to 3 decimals
    assert _row(result.out, "AP @[IoU=0.50]")[1] == pytest.approx(stats[1], abs=5e-4)
    assert "per class (segm)" in result.out and "per class (bbox)" in result.out
    metrics = json.loads((tmp_path / "metrics_val.json").read_text())
    assert metrics["metrics"]["segm_mAP"] == pytest.approx(stats[0], abs=1e-9)
    assert metrics["metrics"]["bbox_mAP"] == pytest.approx(bbox_ap, abs=5e-4)
    assert metrics["segm_file"] == str(segm_file)
    assert [(c["iou_type"], c["name"]) for c in metrics["classes"]] == [
        ("bbox", "square"), ("bbox", "blob"), ("segm", "square"), ("segm", "blob"),
    ]  # fmt: skip
    assert sorted(p.name for p in plots.glob("pr_segm_*.png")) == [
        "pr_segm_00_square.png",
        "pr_segm_01_blob.png",
    ]
    # the bbox results file stays boxes only; the segm file (masks only, COCO's format) scores
    # to the same segm numbers, and each file scores to its own
    assert "segmentation" not in json.loads((tmp_path / "results_val.bbox.json").read_text())[0]
    rescored = cli("eval", str(config), str(segm_file))
    assert rescored.code == 0, rescored.out + rescored.err
    assert _row(rescored.out, "AP @[IoU=0.50:0.95]") == [segm_ap]
    boxes = cli("eval", str(config), str(tmp_path / "results_val.bbox.json"))
    assert _row(boxes.out, "AP @[IoU=0.50:0.95]") == [bbox_ap]


def test_evaluate_keeps_masks_as_rle_only(mask_run, tmp_path):
    import detcli

    config, coco, _ = mask_run
    result = detcli.evaluate(config, tmp_path / "fake.pth", format_only=True)
    assert result.iou_types == ["bbox", "segm"] and result.metrics == {}
    for img_id, det in zip([1, 2, 3], result.detections, strict=True):
        assert det.masks is None and det.rles is not None  # the set holds no bitmaps
        expected = shifted_detections(coco, [img_id])[0].masks
        assert torch.equal(rles_to_masks(det.rles, HEIGHT, WIDTH), expected)


def test_predict_json_carries_each_mask_as_rle(cli, mask_run, tmp_path):
    config, coco, written = mask_run
    out = tmp_path / "preds"
    result = cli(
        "predict", str(config), str(tmp_path / "fake.pth"), str(written.img_dir),
        "--out", str(out), "--score-thr", "0",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    for img_id in (1, 2, 3):
        record = json.loads((out / f"{img_id:03d}.json").read_text())
        expected = shifted_detections(coco, [img_id])[0]
        rles = [d["segmentation"] for d in record["detections"]]
        assert len(rles) == len(expected) and all(isinstance(r["counts"], str) for r in rles)
        assert torch.equal(rles_to_masks(rles, HEIGHT, WIDTH), expected.masks)
        assert (out / f"{img_id:03d}.png").is_file()


def test_check_refuses_segm_for_a_model_without_a_mask_head(cli, mask_run):
    config, _, _ = mask_run  # the shapes Faster R-CNN asked for [bbox, segm]
    result = cli("check", str(config))
    assert result.code == 2
    assert "evaluation.metric.1" in result.out
    assert "no model.roi_head.mask_head" in result.out

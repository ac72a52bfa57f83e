"""segm evaluation on a real COCO json with polygon, RLE and crowd masks: detcli's numbers are
pycocotools' (COCOeval iouType segm, run here on its own), results files round trip."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch

from detcli.data.coco import CocoDataset
from detcli.errors import DataError
from detcli.evaluation import CocoMetric, evaluate_detections, masks_to_rles, rles_to_masks
from detcli.evaluation.class_table import class_table
from detcli.evaluation.coco_metric import score_detections
from detcli.evaluation.pr_curves import plot_pr_curves
from detcli.evaluation.results_files import load_results_json, write_segm_json
from detcli.structures import Detections

from .mask_data import CLASSES, HEIGHT, WIDTH, gt_masks, shifted_detections, write_mask_coco


@pytest.fixture(scope="module")
def mask_set(tmp_path_factory):
    written = write_mask_coco(tmp_path_factory.mktemp("segm"))
    return CocoDataset(str(written.ann_file), [], str(written.img_dir), test_mode=True)


def _perfect(dataset) -> list[Detections]:
    out = []
    for img_id in dataset.img_ids:
        masks, boxes, labels = gt_masks(dataset.coco, img_id)
        out.append(Detections(boxes, torch.linspace(1, 0.5, len(boxes)), labels, masks))
    return out


def _pycocotools_segm(dataset, detections) -> np.ndarray:
    """COCOeval iouType segm the classic way: masks encoded one by one, results without `bbox`
    (as MMDetection passes them, so `loadRes` takes each area from the mask)."""
    from pycocotools import mask as mask_utils
    from pycocotools.cocoeval import COCOeval

    results = []
    for img_id, det in zip(dataset.img_ids, detections, strict=True):
        for mask, score, label in zip(
            det.masks, det.scores.tolist(), det.labels.tolist(), strict=True
        ):
            rle = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
            results.append(
                {
                    "image_id": img_id,
                    "category_id": dataset.cat_ids[label],
                    "segmentation": rle,
                    "score": score,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(dataset.coco, dataset.coco.loadRes(results), "segm")
        coco_eval.params.imgIds = dataset.img_ids
        coco_eval.params.catIds = dataset.cat_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


STATS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")
STATS += ("AR@1", "AR@10", "AR@100", "AR_s@100", "AR_m@100", "AR_l@100")


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_perfect_masks_score_one_and_shifted_masks_score_what_pycocotools_says(mask_set, backend):
    perfect = evaluate_detections(mask_set, _perfect(mask_set), "segm", backend=backend)
    assert perfect["segm_mAP"] == pytest.approx(1.0)
    assert perfect["segm_AP/square"] == pytest.approx(1.0)
    assert perfect["segm_AP/blob"] == pytest.approx(1.0)
    shifted = shifted_detections(mask_set.coco, list(mask_set.img_ids))
    ours = evaluate_detections(mask_set, shifted, ["bbox", "segm"], backend=backend)
    reference = _pycocotools_segm(mask_set, shifted)
    assert 0.05 < ours["segm_mAP"] < 0.9
    for name, value in zip(STATS, reference, strict=True):
        assert ours[f"segm_{name}"] == pytest.approx(value, abs=1e-9), name
    assert ours["bbox_mAP"] != ours["segm_mAP"]  # boxes stayed put, masks moved


def test_rle_round_trip_is_exact_and_json_ready():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(5, HEIGHT, WIDTH, generator=g) > 0.6
    masks[2] = False  # an empty mask
    rles = masks_to_rles(masks)
    assert all(isinstance(r["counts"], str) and r["size"] == [HEIGHT, WIDTH] for r in rles)
    back = rles_to_masks(json.loads(json.dumps(rles)), HEIGHT, WIDTH)
    assert back.dtype == torch.bool and torch.equal(back, masks)
    assert masks_to_rles(torch.zeros(0, HEIGHT, WIDTH, dtype=torch.bool)) == []
    assert rles_to_masks([], HEIGHT, WIDTH).shape == (0, HEIGHT, WIDTH)


def test_segm_results_file_scores_as_the_detections_and_as_pycocotools(mask_set, tmp_path):
    from pycocotools.cocoeval import COCOeval

    shifted = shifted_detections(mask_set.coco, list(mask_set.img_ids))
    path = write_segm_json(tmp_path / "results_val.segm.json", mask_set, shifted)
    rows = json.loads(path.read_text())
    assert len(rows) == sum(len(d) for d in shifted)
    # COCO's segm results format: no `bbox`, so any COCO tool sizes each result by its mask
    assert set(rows[0]) == {"image_id", "category_id", "score", "segmentation"}
    assert {r["category_id"] for r in rows} <= {3, 7}
    loaded = load_results_json(path, mask_set)
    assert [d.rles is not None for d in loaded] == [True] * len(loaded)
    in_memory = evaluate_detections(mask_set, shifted, "segm")
    from_file = evaluate_detections(mask_set, loaded, "segm")
    assert from_file == pytest.approx(in_memory, abs=1e-6)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(mask_set.coco, mask_set.coco.loadRes(rows), "segm")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    assert in_memory["segm_mAP"] == pytest.approx(coco_eval.stats[0], abs=1e-6)
    # a segm file with boxes (MMDetection writes them) scores the same: detcli sizes by mask
    with_boxes = [dict(r, bbox=[0.0, 0.0, 1.0, 1.0]) for r in json.loads(path.read_text())]
    (tmp_path / "with_bbox.json").write_text(json.dumps(with_boxes))
    boxed = load_results_json(tmp_path / "with_bbox.json", mask_set)
    assert evaluate_detections(mask_set, boxed, "segm") == pytest.approx(in_memory)


def test_segm_files_of_another_dataset_or_half_segm_are_refused(mask_set, tmp_path):
    shifted = shifted_detections(mask_set.coco, list(mask_set.img_ids))
    rows = json.loads(write_segm_json(tmp_path / "r.json", mask_set, shifted).read_text())
    bigger = [dict(r, segmentation=dict(r["segmentation"], size=[96, 128])) for r in rows]
    (tmp_path / "big.json").write_text(json.dumps(bigger))
    with pytest.raises(DataError, match="masks are not the size of their image"):
        load_results_json(tmp_path / "big.json", mask_set)
    half = [dict(r) for r in rows]
    half[0].pop("segmentation")
    (tmp_path / "half.json").write_text(json.dumps(half))
    with pytest.raises(DataError, match="a segm results file needs one per entry"):
        load_results_json(tmp_path / "half.json", mask_set)


def test_per_class_table_and_pr_curves_have_segm(mask_set, tmp_path):
    shifted = shifted_detections(mask_set.coco, list(mask_set.img_ids))
    scores = score_detections(mask_set, shifted, iou_type="segm")
    rows = class_table(mask_set, shifted, scores)
    assert [(r.iou_type, r.name, r.gts) for r in rows] == [
        ("segm", "square", 3),
        ("segm", "blob", 2),
    ]
    for row in rows:
        assert scores.metrics[f"segm_AP/{row.name}"] == pytest.approx(row.AP)
    plots = plot_pr_curves(scores, list(CLASSES), tmp_path)
    assert [p.name for p in plots] == ["pr_segm_00_square.png", "pr_segm_01_blob.png"]


def test_mask_areas_of_more_than_255_masks():
    from detcli.evaluation.masks import mask_areas, masks_to_rles

    masks = torch.zeros(300, 8, 8, dtype=torch.bool)
    masks[:, :2, :3] = True
    assert mask_areas(masks_to_rles(masks)).tolist() == [6.0] * 300


def test_segm_needs_masks_on_both_sides(mask_set, tmp_path, shapes_coco):
    boxes_only = [Detections(d.boxes, d.scores, d.labels) for d in _perfect(mask_set)]
    with pytest.raises(DataError, match=r"no mask head \(model.roi_head.mask_head\)"):
        evaluate_detections(mask_set, boxes_only, "segm")
    stripped = json.loads(shapes_coco.val_ann.read_text())
    for ann in stripped["annotations"]:
        ann.pop("segmentation", None)
    boxes_json = tmp_path / "boxes_only.json"
    boxes_json.write_text(json.dumps(stripped))
    no_segm = CocoDataset(str(boxes_json), [], str(shapes_coco.val_img), test_mode=True)
    dets = [Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))]
    with pytest.raises(DataError, match=r"have none .*Use metric: bbox"):
        evaluate_detections(no_segm, dets * len(no_segm), "segm")


def test_coco_metric_bbox_and_segm_writes_both_results_files(mask_set, tmp_path):
    shifted = shifted_detections(mask_set.coco, list(mask_set.img_ids))
    prefix = tmp_path / "out" / "coco"
    metrics = CocoMetric(metric=["bbox", "segm"], outfile_prefix=str(prefix))(mask_set, shifted)
    assert {"bbox_mAP", "segm_mAP", "segm_AP/blob", "bbox_AP50/square"} <= set(metrics)
    assert not any(math.isnan(v) for v in metrics.values())
    segm_rows = json.loads((tmp_path / "out" / "coco.segm.json").read_text())
    bbox_rows = json.loads((tmp_path / "out" / "coco.bbox.json").read_text())
    assert "segmentation" in segm_rows[0] and "segmentation" not in bbox_rows[0]
    only = CocoMetric(metric="segm", format_only=True, outfile_prefix=str(tmp_path / "t"))
    assert only(mask_set, shifted) == {}
    assert (tmp_path / "t.segm.json").is_file()


def test_check_allows_segm_only_with_a_mask_head():
    from detcli.config.model_check import metric_problems

    faster = {"type": "FasterRCNN", "roi_head": {"type": "StandardRoIHead", "bbox_head": {}}}
    mask = {**faster, "roi_head": {**faster["roi_head"], "mask_head": {"type": "FCNMaskHead"}}}
    v2 = {"evaluation": {"metric": ["bbox", "segm"]}}
    v3 = {"val_evaluator": {"type": "CocoMetric", "metric": ["bbox", "segm"]}}
    for spelling in (v2, v3):
        assert metric_problems({**spelling, "model": mask}) == []
        [(where, message)] = metric_problems({**spelling, "model": faster})
        assert where[-1] == 1 and "no model.roi_head.mask_head" in message
        assert "scored by metric bbox" in message
    [(_, message)] = metric_problems({"evaluation": {"metric": "proposal"}, "model": mask})
    assert "scored by metric bbox or segm" in message


def test_tta_merging_keeps_each_kept_box_with_its_own_mask():
    from detcli.inference.tta import merge_nms, weighted_box_fusion

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40]])
    scores = torch.tensor([0.6, 0.9, 0.8])
    labels = torch.tensor([0, 0, 1])
    masks = torch.zeros(3, HEIGHT, WIDTH, dtype=torch.bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        masks[k, y1:y2, x1:x2] = True
    merged = merge_nms(boxes, scores, labels, 0.5, 100, masks)
    assert merged.masks is not None and torch.equal(merged.masks, masks[[1, 2]])
    fused = weighted_box_fusion(boxes, scores, labels, 2, 0.5, 100, masks)
    assert fused.masks is not None and torch.equal(fused.masks, masks[[1, 2]])  # the best's

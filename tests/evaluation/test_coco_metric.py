"""COCO bbox metrics on a real synthetic COCO set: perfect, perturbed, empty, class subsets."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from detcli.data.coco import CocoDataset
from detcli.evaluation import CocoMetric, evaluate_detections
from detcli.structures import Detections


@pytest.fixture(scope="module")
def val_set(shapes_coco):
    return CocoDataset(str(shapes_coco.val_ann), [], str(shapes_coco.val_img), test_mode=True)


def _gt_detections(dataset) -> list[Detections]:
    out = []
    for i in range(len(dataset)):
        ann = dataset.get_ann_info(i)
        boxes = torch.as_tensor(ann["bboxes"], dtype=torch.float32)
        out.append(Detections(boxes, torch.ones(len(boxes)), torch.as_tensor(ann["labels"])))
    return out


def _noisy(dataset, seed: int = 0) -> list[Detections]:
    """GT boxes jittered, some dropped, some wrong labels, plus random false positives."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for det in _gt_detections(dataset):
        n = len(det)
        boxes = det.boxes + torch.randn(n, 4, generator=g) * 4
        keep = torch.rand(n, generator=g) > 0.2
        labels = torch.where(torch.rand(n, generator=g) > 0.85, (det.labels + 1) % 3, det.labels)
        fp = torch.rand(3, 2, generator=g) * 90
        fp_boxes = torch.cat([fp, fp + 10 + torch.rand(3, 2, generator=g) * 30], dim=1)
        out.append(
            Detections(
                torch.cat([boxes[keep], fp_boxes]),
                torch.rand(int(keep.sum()) + 3, generator=g),
                torch.cat([labels[keep], torch.randint(0, 3, (3,), generator=g)]),
            )
        )
    return out


def _reference(dataset, detections) -> np.ndarray:
    """pycocotools the classic way: a list of result dicts, one per box, written out by hand."""
    from pycocotools.cocoeval import COCOeval

    results = []
    for img_id, det in zip(dataset.img_ids, detections, strict=True):
        for box, score, label in zip(
            det.boxes.tolist(), det.scores.tolist(), det.labels.tolist(), strict=True
        ):
            x1, y1, x2, y2 = box
            results.append(
                {
                    "image_id": img_id,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": score,
                    "category_id": dataset.cat_ids[label],
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(dataset.coco, dataset.coco.loadRes(results), "bbox")
        coco_eval.params.imgIds = dataset.img_ids
        coco_eval.params.catIds = dataset.cat_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def test_ground_truth_scores_perfectly(val_set, shapes_coco):
    metrics = evaluate_detections(val_set, _gt_detections(val_set))
    assert metrics["bbox_mAP"] == pytest.approx(1.0) and metrics["bbox_mAP_50"] == pytest.approx(
        1.0
    )
    assert metrics["bbox_AR@100"] == pytest.approx(1.0)
    for name in shapes_coco.classes:
        assert metrics[f"bbox_AP/{name}"] == pytest.approx(1.0)
    keys = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
            "bbox_AR@1", "bbox_AR@10", "bbox_AR@100", "bbox_AR_s@100", "bbox_AR_m@100", "bbox_AR_l@100"]  # fmt: skip
    assert [k for k in metrics if not k.startswith("bbox_AP")] == keys


@pytest.mark.parametrize("backend", ["faster_coco_eval", "pycocotools"])
def test_both_backends_equal_classic_pycocotools(val_set, backend):
    detections = _noisy(val_set)
    metrics = evaluate_detections(val_set, detections, backend=backend)
    reference = _reference(val_set, detections)
    ours = [metrics[k] for k in metrics if not k.startswith("bbox_AP")]
    assert ours == pytest.approx(reference.tolist(), abs=1e-9)
    assert 0.05 < metrics["bbox_mAP"] < 0.95  # a real, imperfect score


def test_no_detections_scores_zero(val_set):
    empty = [
        Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    ] * len(val_set)
    metrics = evaluate_detections(val_set, empty)
    assert metrics["bbox_mAP"] == 0.0 and metrics["bbox_AR@100"] == 0.0


def test_class_subset_is_scored_on_its_own_classes(shapes_coco):
    subset = CocoDataset(
        str(shapes_coco.val_ann),
        [],
        str(shapes_coco.val_img),
        classes=["circle", "square"],
        test_mode=True,
    )
    dets = _gt_detections(subset)
    metrics = CocoMetric()(subset, dets)
    assert metrics["bbox_mAP"] == pytest.approx(1.0)
    assert set(k.split("/")[1] for k in metrics if k.startswith("bbox_AP/")) == {"circle", "square"}


def test_bad_inputs_raise_and_perfect_scores_are_finite(val_set):
    from detcli.errors import DataError

    dets = _gt_detections(val_set)
    with pytest.raises(DataError, match="one `Detections` per image"):
        evaluate_detections(val_set, dets[:-1])
    bad = [Detections(d.boxes, d.scores, d.labels + 5) for d in dets]
    with pytest.raises(DataError, match="num_classes"):
        evaluate_detections(val_set, bad)
    with pytest.raises(DataError, match=r"metric: bbox, segm or \[bbox, segm\]"):
        CocoMetric(metric="proposal")
    assert not any(math.isnan(v) for v in evaluate_detections(val_set, dets).values())

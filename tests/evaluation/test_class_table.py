"""Per-class table and precision-recall curves: each class's numbers are pycocotools' numbers
for that category alone, and the PNGs are real images, one per class."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from detcli.data.coco import CocoDataset
from detcli.evaluation import score_detections
from detcli.evaluation.class_table import class_table
from detcli.evaluation.pr_curves import plot_pr_curves, pr_curve

from .test_coco_metric import _gt_detections, _noisy


@pytest.fixture(scope="module")
def val_set(shapes_coco):
    return CocoDataset(str(shapes_coco.val_ann), [], str(shapes_coco.val_img), test_mode=True)


def _one_category(dataset, detections, cat_id):
    """pycocotools' 12 numbers with only one category evaluated."""
    from pycocotools.cocoeval import COCOeval

    results = []
    for img_id, det in zip(dataset.img_ids, detections, strict=True):
        for (x1, y1, x2, y2), s, k in zip(
            det.boxes.tolist(), det.scores.tolist(), det.labels.tolist(), strict=True
        ):
            bbox = [x1, y1, x2 - x1, y2 - y1]
            cat = dataset.cat_ids[k]
            results.append({"image_id": img_id, "bbox": bbox, "score": s, "category_id": cat})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(dataset.coco, dataset.coco.loadRes(results), "bbox")
        coco_eval.params.imgIds = dataset.img_ids
        coco_eval.params.catIds = [cat_id]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def test_per_class_rows_equal_pycocotools_per_category(val_set):
    dets = _noisy(val_set, seed=1)
    scores = score_detections(val_set, dets)
    rows = class_table(val_set, dets, scores)
    assert [r.name for r in rows] == list(val_set.CLASSES)
    _, _, labels, crowd = val_set.box_table()
    for row in rows:
        ref = _one_category(val_set, dets, val_set.cat_ids[row.label])
        ours = [row.AP, row.AP50, row.AP75, row.APs, row.APm, row.APl]
        expected = [np.nan if v < 0 else v for v in ref[:6]]
        assert ours == pytest.approx(expected, abs=1e-6, nan_ok=True)
        expected_ap = scores.metrics[f"bbox_AP/{row.name}"]
        assert pytest.approx(expected_ap, abs=1e-12) == row.AP
        assert row.gts == int(((labels == row.label) & ~crowd).sum())
        assert row.dets == sum(int((d.labels == row.label).sum()) for d in dets)
    assert 0 < min(r.AP for r in rows) < 1


def test_pr_curves_are_one_png_per_class_and_match_the_ap(val_set, tmp_path):
    from torchvision.io import read_image

    perfect = score_detections(val_set, _gt_detections(val_set))
    assert pr_curve(perfect, 0, 0.5) == pytest.approx(np.ones(101))
    scores = score_detections(val_set, _noisy(val_set, seed=2))
    for k, name in enumerate(val_set.CLASSES):
        curve = pr_curve(scores, k, 0.5)
        assert curve is not None and curve.mean() == pytest.approx(
            scores.metrics[f"bbox_AP50/{name}"], abs=1e-12
        )
        assert (np.diff(curve) <= 1e-12).all()  # COCO's interpolated precision never rises
    written = plot_pr_curves(scores, val_set.CLASSES, tmp_path / "pr")
    assert [p.name for p in written] == [
        f"pr_{k:02d}_{n}.png" for k, n in enumerate(val_set.CLASSES)
    ]
    img = read_image(str(written[0]))
    assert img.shape[0] in (3, 4) and img.shape[1] > 100 and img.float().std() > 10

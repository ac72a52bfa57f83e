"""Test-time augmentation: the config's MultiScaleFlipAug turned on, views merged by NMS or WBF."""

from __future__ import annotations

import pytest
import torch

from detcli.config import load_config
from detcli.errors import ConfigError
from detcli.inference.tta import merge_nms, tta_dataset_cfg, weighted_box_fusion


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_wbf_averages_overlapping_boxes_by_score_and_keeps_classes_apart():
    boxes = _boxes([10, 10, 50, 50], [12, 12, 52, 52], [10, 10, 50, 50], [100, 100, 120, 120])
    scores = torch.tensor([0.9, 0.3, 0.8, 0.6])
    labels = torch.tensor([0, 0, 1, 0])  # box 2 overlaps box 0 but is another class
    fused = weighted_box_fusion(boxes, scores, labels, num_views=2, iou_thr=0.55, max_dets=10)
    assert len(fused) == 3
    first = fused.boxes[0]
    # class 0 cluster {0, 1}: score-weighted mean box, score = (0.9 + 0.3) / 2 views
    assert first.tolist() == pytest.approx(((0.9 * boxes[0] + 0.3 * boxes[1]) / 1.2).tolist())
    assert fused.scores[0].item() == pytest.approx(0.6)
    assert fused.labels[0].item() == 0
    # boxes only one of the two views found are halved
    assert fused.labels[1:].tolist() == [1, 0]
    assert fused.scores[1:].tolist() == pytest.approx([0.4, 0.3])


def test_wbf_of_identical_views_is_the_single_view_and_nms_keeps_the_best():
    boxes = _boxes([0, 0, 10, 10], [30, 30, 60, 60])
    scores = torch.tensor([0.7, 0.5])
    labels = torch.tensor([2, 1])
    views = 3
    pooled = (boxes.repeat(views, 1), scores.repeat(views), labels.repeat(views))
    fused = weighted_box_fusion(*pooled, num_views=views, iou_thr=0.55, max_dets=100)
    assert torch.allclose(fused.boxes, boxes)
    assert fused.scores.tolist() == pytest.approx(scores.tolist())
    assert fused.labels.tolist() == labels.tolist()
    kept = merge_nms(*pooled, iou_thr=0.5, max_dets=1)
    assert len(kept) == 1 and kept.scores.item() == pytest.approx(0.7)
    empty = weighted_box_fusion(
        torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 2, 0.55, 10
    )
    assert len(empty) == 0


def test_tta_pipeline_gives_flipped_views_at_each_scale(trained):
    from detcli.data import build_dataset

    cfg = load_config(trained.config)
    tta = tta_dataset_cfg(cfg.data.val, "data.val", scales=[(96, 96), (128, 128)])
    sample = build_dataset(tta, test_mode=True)[0]
    assert len(sample["img"]) == 4  # 2 scales x (plain, flipped)
    flips = [m["flip"] for m in sample["img_metas"]]
    assert flips == [False, True, False, True]
    plain, flipped = sample["img"][2], sample["img"][3]
    assert torch.equal(flipped, plain.flip(-1))
    assert tuple(sample["img_metas"][0]["img_shape"][:2]) == (96, 96)
    assert cfg.data.val.pipeline[1]["flip"] is False  # the config itself is untouched


def test_tta_needs_multiscaleflipaug_with_a_randomflip(trained):
    cfg = load_config(trained.config)
    no_msfa = dict(cfg.data.val, pipeline=[{"type": "LoadImageFromFile"}])
    with pytest.raises(ConfigError, match=r"test-time augmentation in data\.val\.pipeline"):
        tta_dataset_cfg(no_msfa, "data.val")
    msfa = dict(cfg.data.val.pipeline[1])
    msfa["transforms"] = [t for t in msfa["transforms"] if t["type"] != "RandomFlip"]
    no_flip = dict(cfg.data.val, pipeline=[cfg.data.val.pipeline[0], msfa])
    with pytest.raises(ConfigError, match="no inner RandomFlip"):
        tta_dataset_cfg(no_flip, "data.val")


PIPELINE_3X = [
    {"type": "LoadImageFromFile"},
    {"type": "Resize", "scale": [128, 128], "keep_ratio": True},
    {"type": "PackDetInputs"},
]


def test_tta_builds_a_test_time_aug_from_a_3x_test_pipeline(trained):
    """A 3.x test pipeline has no MultiScaleFlipAug: --tta wraps its steps in a TestTimeAug."""
    from detcli.data import build_dataset

    cfg = load_config(trained.config)
    plain = dict(cfg.data.val, pipeline=PIPELINE_3X)
    tta = tta_dataset_cfg(plain, "val_dataloader.dataset", scales=[(96, 96), (128, 128)])
    assert [s["type"] for s in tta["pipeline"]] == ["LoadImageFromFile", "TestTimeAug"]
    sample = build_dataset(tta, test_mode=True)[0]
    assert len(sample["img"]) == 4  # 2 scales x (flipped, plain)
    shapes = {tuple(m["img_shape"][:2]) for m in sample["img_metas"]}
    assert shapes == {(96, 96), (128, 128)}
    assert sorted(m["flip"] for m in sample["img_metas"]) == [False, False, True, True]
    again = tta_dataset_cfg(tta, "val_dataloader.dataset", scales=[(64, 64)], flip=False)
    views = build_dataset(again, test_mode=True)[0]
    assert len(views["img"]) == 1 and views["img_metas"][0]["flip"] is False

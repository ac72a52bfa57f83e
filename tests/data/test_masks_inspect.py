"""Masks in `dataset lint|stats|show`, in `draw_detections`, and in `detcli check`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import CATEGORIES, box, coco_cfg, image, write_coco, write_config
from PIL import Image
from test_dataset_cli import row

from conftest import REPO
from detcli.structures import Detections
from detcli.visualization import draw_detections

MASK_TRAIN = [
    {"type": "LoadImageFromFile"},
    {"type": "LoadAnnotations", "with_bbox": True, "with_mask": True, "poly2mask": False},
    {"type": "Resize", "img_scale": [128, 96], "keep_ratio": True},
    {"type": "Pad", "size_divisor": 32},
    {"type": "DefaultFormatBundle"},
    {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_labels", "gt_masks"]},
]


def _rect(x, y, w, h):
    return [x, y, x + w, y, x + w, y + h, x, y + h]


@pytest.fixture
def masked(tmp_path):
    """Two 96x64 images: two cats and a dog with polygon masks, a bird with an RLE mask, a
    crowd region, and one cat whose polygon covers nothing."""
    rle = {"size": [64, 96], "counts": [64 * 10 + 5, 10, 54, 10, 64 * 96 - 64 * 12 - 15]}
    anns = [
        box(1, 1, 1, [4, 4, 20, 20], segmentation=[_rect(4, 4, 20, 20)]),
        box(2, 1, 1, [40, 4, 20, 20], segmentation=[_rect(40, 4, 20, 20)]),
        box(3, 1, 3, [4, 30, 30, 20], segmentation=[_rect(4, 30, 30, 20)]),
        box(4, 2, 7, [10, 5, 2, 10], segmentation=rle),
        box(5, 2, 1, [60, 30, 20, 20], iscrowd=1, segmentation=[_rect(60, 30, 20, 20)]),
        box(6, 2, 1, [30, 30, 10, 10], segmentation=[[30, 30, 40, 40]]),
    ]
    ann, prefix = write_coco(tmp_path, [image(1, 96, 64), image(2, 96, 64)], anns, CATEGORIES)
    return write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix, MASK_TRAIN))


def test_stats_count_masks_per_class(cli, masked):
    result = cli("dataset", "stats", str(masked))
    assert result.code == 0, result.err
    assert row(result.out, "masks (with_mask)") == ["4"]  # the empty polygon is not a mask
    # label, class, boxes, images, masks
    assert row(result.out, "cat") == ["3", "2", "2"]
    assert row(result.out, "dog") == ["1", "1", "1"]
    assert row(result.out, "bird") == ["1", "1", "1"]


def test_stats_without_masks_has_no_mask_column(cli, masked):
    result = cli("dataset", "stats", str(masked), "--set", "data.train.pipeline.1.with_mask=false")
    assert result.code == 0, result.err
    assert "masks" not in result.out


def test_lint_reports_every_mask_problem(cli, tmp_path):
    rle_wrong = {"size": [10, 10], "counts": [100]}
    anns = [
        box(1, 1, 1, [4, 4, 20, 20], segmentation=[_rect(4, 4, 20, 20)]),  # clean
        box(2, 1, 1, [4, 4, 20, 20], segmentation=[[4, 4, 20, 20]]),  # 2 points
        box(3, 1, 3, [80, 40, 20, 20], segmentation=[_rect(80, 40, 30, 30)]),  # past the edge
        box(4, 1, 3, [4, 4, 10, 10], segmentation=rle_wrong),
        box(5, 1, 7, [4, 4, 10, 10], segmentation=[_rect(50, 30, 10, 10)]),  # far from bbox
        box(6, 1, 7, [4, 4, 10, 10], segmentation=[_rect(200, 200, 10, 10)]),  # off the image
    ]
    ann, prefix = write_coco(tmp_path, [image(1, 96, 64)], anns, CATEGORIES)
    cfg = write_config(tmp_path / "cfg.yaml", coco_cfg(ann, prefix, MASK_TRAIN))
    result = cli("dataset", "lint", str(cfg))
    out = " ".join(result.out.split())
    assert result.code == 1, out  # errors found
    assert "invalid polygon" in out and "annotation 2" in out and "fewer than 3 points" in out
    assert "polygon partly outside image" in out and "annotation 3" in out
    assert "RLE size mismatch" in out and "[10, 10]" in out and "annotation 4" in out
    assert "mask and box disagree" in out and "annotation 5" in out
    assert "polygon entirely outside image" in out and "annotation 6" in out
    assert "annotation 1 " not in out and "annotation 1," not in out


def test_lint_of_the_synthetic_set_with_masks_is_clean(cli, shapes_coco, tmp_path):
    cfg = write_config(
        tmp_path / "cfg.yaml",
        coco_cfg(shapes_coco.train_ann, shapes_coco.train_img, MASK_TRAIN),
    )
    data = json.loads(Path(shapes_coco.train_ann).read_text())
    assert all(isinstance(a["segmentation"], dict) for a in data["annotations"])
    result = cli("dataset", "lint", str(cfg))
    assert result.code == 0, result.out


def _centre_of_first_cat(out_dir: Path) -> np.ndarray:
    """The drawn pixel at (14, 14) of the 96-px-wide image (its first cat's centre): drawings
    are upscaled, and the pipeline's resize keeps the ratio, so x and y scale by width alone."""
    (png,) = sorted(out_dir.glob("*.png"))
    drawn = np.asarray(Image.open(png).convert("RGB")).astype(np.int32)
    k = int(14 * drawn.shape[1] / 96)
    return drawn[k, k]


@pytest.mark.parametrize("after", [False, True], ids=["raw", "after-pipeline"])
def test_show_draws_masks(cli, masked, tmp_path, after):
    args = ["--after-pipeline"] if after else []
    shown = cli("dataset", "show", str(masked), "--out", str(tmp_path / "m"), "-n", "1", *args)
    assert shown.code == 0, shown.err
    no_masks = ["--set", "data.train.pipeline.1.with_mask=false"]
    no_masks += ["--set", "data.train.pipeline.5.keys=[img,gt_bboxes,gt_labels]"]
    plain = cli(
        "dataset", "show", str(masked), "--out", str(tmp_path / "p"), "-n", "1", *args, *no_masks
    )
    assert plain.code == 0, plain.err
    tinted, untinted = _centre_of_first_cat(tmp_path / "m"), _centre_of_first_cat(tmp_path / "p")
    assert np.abs(tinted - untinted).sum() > 30  # the translucent fill changed the pixel


def test_draw_detections_fills_masks_in_the_class_colour():
    img = torch.zeros((3, 64, 64), dtype=torch.uint8)
    masks = torch.zeros((1, 64, 64), dtype=torch.bool)
    masks[0, 10:30, 10:30] = True
    det = Detections(
        torch.tensor([[10.0, 10, 30, 30]]), torch.tensor([0.9]), torch.tensor([1]), masks=masks
    )
    colours = [(255, 0, 0), (0, 255, 0)]
    drawn = draw_detections(img, det, ["a", "b"], colours=colours)
    plain = draw_detections(
        img, Detections(det.boxes, det.scores, det.labels), ["a", "b"], colours=colours
    )
    scale = drawn.shape[-1] / 64
    y = x = int(20 * scale)  # the mask's centre: green fill over black
    assert drawn[1, y, x] > 80 and drawn[0, y, x] == 0 and plain[:, y, x].sum() == 0
    far = int(50 * scale)
    assert torch.equal(drawn[:, far, far], plain[:, far, far])  # outside the mask: untouched


def test_check_refuses_with_mask_on_a_json_without_segmentations(cli, shapes_coco, tmp_path):
    data = json.loads(Path(shapes_coco.train_ann).read_text())
    for a in data["annotations"]:
        del a["segmentation"]
    boxes_only = tmp_path / "boxes.json"
    boxes_only.write_text(json.dumps(data))
    base = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"_base_: {base}\n"
        "data:\n"
        "  train:\n"
        f"    ann_file: {boxes_only}\n"
        f"    img_prefix: {shapes_coco.train_img}\n"
        "    pipeline:\n"
        "      - {type: LoadImageFromFile}\n"
        "      - {type: LoadAnnotations, with_bbox: true, with_mask: true}\n"
        "      - {type: Resize, img_scale: [128, 128], keep_ratio: true}\n"
        "      - {type: RandomAffine}\n"
        "      - {type: DefaultFormatBundle}\n"
        "      - {type: Collect, keys: [img, gt_bboxes, gt_labels, gt_masks]}\n"
    )
    result = cli("check", str(cfg))
    out = " ".join(result.out.split())
    assert result.code == 2, out
    assert "data.train.ann_file" in out and "boxes.json" in out and "`segmentation`" in out
    assert "data.train.pipeline.1.with_mask is true" in out
    assert "data.train.pipeline.3.type" in out and "RandomAffine is not supported with masks" in out
    # the same config on the synthetic json (which has masks) checks clean of both
    fixed = cfg.read_text().replace(str(boxes_only), str(shapes_coco.train_ann))
    cfg.write_text(fixed.replace("      - {type: RandomAffine}\n", ""))
    result = cli("check", str(cfg))
    assert "segmentation" not in result.out and "RandomAffine" not in result.out

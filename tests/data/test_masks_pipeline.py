"""Masks through the data pipeline: a real COCO json with polygon, RLE and crowd instances and
real PNGs, every geometric transform moving masks as boxes, formatting and collate."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from data_helpers import CATEGORIES, box, image, write_coco
from pycocotools import mask as mask_utils

from detcli.data import CocoDataset
from detcli.data.builder import build_pipeline
from detcli.data.collate import collate
from detcli.data.masks import BitmapMasks, PolygonMasks
from detcli.data.transforms import RandomAffine, RandomFlip, Resize
from detcli.errors import DataError

W, H = 96, 64


def _rle_square(x: int, y: int, size: int, compressed: bool) -> dict[str, Any]:
    m = np.zeros((H, W), dtype=np.uint8, order="F")
    m[y : y + size, x : x + size] = 1
    if compressed:
        rle = mask_utils.encode(m)
        return {"size": [H, W], "counts": rle["counts"].decode()}
    flat = m.flatten(order="F")
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(flat.astype(np.int8))) + 1, [flat.size]))
    return {"size": [H, W], "counts": np.diff(bounds).tolist()}  # flat[0] == 0: zeros first


def _poly_rect(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


@pytest.fixture
def mask_coco(tmp_path: Path) -> tuple[Path, Path]:
    """Image 1: a polygon cat, an RLE dog, a crowd region (uncompressed RLE). Image 2: a bird
    of two polygons and a cat whose only polygon has 2 points (covers nothing)."""
    anns = [
        box(1, 1, 1, [10, 8, 30, 20], segmentation=[_poly_rect(10, 8, 30, 20)]),
        box(2, 1, 3, [50, 20, 16, 16], segmentation=_rle_square(50, 20, 16, compressed=True)),
        box(3, 1, 1, [70, 40, 20, 20], iscrowd=1, segmentation=_rle_square(70, 40, 20, False)),
        box(
            4,
            2,
            7,
            [4, 4, 60, 30],
            segmentation=[_poly_rect(4, 4, 20, 30), _poly_rect(44, 4, 20, 30)],
        ),
        box(5, 2, 1, [70, 30, 10, 10], segmentation=[[70, 30, 80, 40]]),
    ]
    return write_coco(tmp_path, [image(1, W, H), image(2, W, H)], anns, CATEGORIES)


def _dataset(mask_coco: tuple[Path, Path], pipeline: list[dict[str, Any]]) -> CocoDataset:
    ann, prefix = mask_coco
    return CocoDataset(str(ann), build_pipeline(pipeline).transforms, img_prefix=str(prefix))


def _load(poly2mask: bool) -> list[dict[str, Any]]:
    return [
        {"type": "LoadImageFromFile"},
        {"type": "LoadAnnotations", "with_bbox": True, "with_mask": True, "poly2mask": poly2mask},
    ]


def test_load_annotations_polygons_rle_and_crowd(mask_coco) -> None:
    ds = _dataset(mask_coco, _load(poly2mask=True))
    first = ds.pipeline(ds.results(0))
    masks = first["gt_masks"]
    assert isinstance(masks, BitmapMasks) and (masks.height, masks.width) == (H, W)
    assert len(masks) == len(first["gt_bboxes"]) == 2  # the crowd region has no mask
    assert first["gt_bboxes_ignore"].tolist() == [[70, 40, 90, 60]]
    assert first["mask_fields"] == ["gt_masks"]
    # each mask lies exactly in its box (polygon rectangle and RLE square)
    assert masks.bounding_boxes().tolist() == first["gt_bboxes"].tolist()
    second = ds.pipeline(ds.results(1))
    # the 2-point cat covers nothing: it becomes an ignore box, as MMDetection 3.x ignores it
    assert second["gt_labels"].tolist() == [2]
    assert second["gt_bboxes_ignore"].tolist() == [[70, 30, 80, 40]]
    assert second["gt_masks"].areas.tolist() == [1200.0]


def test_poly2mask_false_keeps_polygons_unless_the_image_has_rle(mask_coco) -> None:
    ds = _dataset(mask_coco, _load(poly2mask=False))
    assert isinstance(ds.pipeline(ds.results(0))["gt_masks"], BitmapMasks)  # holds an RLE
    polys = ds.pipeline(ds.results(1))["gt_masks"]
    assert isinstance(polys, PolygonMasks)
    assert [p.tolist() for p in polys.polygons[0]] == [
        _poly_rect(4, 4, 20, 30),
        _poly_rect(44, 4, 20, 30),
    ]


TRAIN_2X: list[dict[str, Any]] = [
    {"type": "Resize", "img_scale": [192, 128], "keep_ratio": True},
    {"type": "RandomFlip", "flip_ratio": 1.0},
    {"type": "Pad", "size_divisor": 32},
    {"type": "DefaultFormatBundle"},
    {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_labels", "gt_masks"]},
]


def test_polygons_stay_polygons_through_a_2x_pipeline_and_collate(mask_coco) -> None:
    ds = _dataset(mask_coco, _load(poly2mask=False) + TRAIN_2X)
    samples = [ds[0], ds[1]]
    assert isinstance(samples[1]["gt_masks"], PolygonMasks)  # no bitmap was ever made
    for s in samples:
        masks = s["gt_masks"]
        assert (masks.height, masks.width) == tuple(s["img"].shape[-2:]) == (128, 192)
        # 2x resize then horizontal flip: each mask's box is its (moved) box
        got = masks.bounding_boxes()
        assert torch.allclose(got[:, [1, 3]], s["gt_bboxes"][:, [1, 3]])
        assert torch.allclose(got[:, [0, 2]], s["gt_bboxes"][:, [0, 2]])
    batch = collate(samples)
    assert isinstance(batch["gt_masks"], list) and len(batch["gt_masks"]) == 2
    assert [len(m) for m in batch["gt_masks"]] == [len(b) for b in batch["gt_bboxes"]]


def test_3x_pipeline_random_resize_crop_and_pack(mask_coco) -> None:
    pipeline = [
        *_load(poly2mask=False),
        {"type": "RandomChoiceResize", "scales": [[144, 96], [192, 128]], "keep_ratio": True},
        {"type": "RandomResize", "scale": [[96, 64], [192, 128]], "keep_ratio": True},
        {"type": "RandomFlip", "prob": 0.5, "direction": ["horizontal", "vertical"]},
        {"type": "RandomCrop", "crop_size": [48, 48], "allow_negative_crop": True},
        {"type": "PackDetInputs"},
    ]
    ds = _dataset(mask_coco, pipeline)
    random.seed(0)
    for _ in range(6):
        for idx in range(2):
            s = ds[idx]
            masks = s["gt_masks"]
            assert (masks.height, masks.width) == tuple(s["img"].shape[-2:])
            assert len(masks) == len(s["gt_bboxes"]) == len(s["gt_labels"])
            # a cropped mask stays inside its (clipped) box, up to rasterisation
            bm = masks.to_bitmap()
            inside = bm.bounding_boxes()
            nonempty = bm.areas > 0
            assert (inside[nonempty, :2] >= s["gt_bboxes"][nonempty, :2] - 1).all()
            assert (inside[nonempty, 2:] <= s["gt_bboxes"][nonempty, 2:] + 1).all()


def test_random_crop_cuts_masks_and_drops_them_with_their_boxes(mask_coco, monkeypatch) -> None:
    pipeline = [*_load(poly2mask=True), {"type": "RandomCrop", "crop_size": [40, 40]}]
    ds = _dataset(mask_coco, pipeline)
    y0, x0 = 4, 6  # the window (6, 4)-(46, 44) holds the cat; the dog (x >= 50) is outside
    draws = iter([y0, x0])
    monkeypatch.setattr(random, "randint", lambda a, b: next(draws))
    out = ds.pipeline(ds.results(0))
    assert out["gt_labels"].tolist() == [0]
    assert out["gt_bboxes"].tolist() == [[4, 4, 34, 24]]
    masks = out["gt_masks"]
    assert (masks.height, masks.width) == (40, 40) and len(masks) == 1
    full = torch.zeros((H, W), dtype=torch.uint8)
    full[8:28, 10:40] = 1  # the cat's polygon, rasterised
    assert torch.equal(masks.masks[0], full[y0 : y0 + 40, x0 : x0 + 40])


def test_resize_drops_masks_with_the_boxes_it_drops() -> None:
    m = torch.zeros((2, 32, 64), dtype=torch.uint8)
    m[0, 4:20, 8:24] = 1
    results = {
        "img": torch.zeros((3, 32, 64), dtype=torch.uint8),
        "img_shape": (32, 64, 3),
        # the second box lies right of the image: clipping leaves it no width
        "gt_bboxes": torch.tensor([[8.0, 4, 24, 20], [70, 4, 80, 20]]),
        "gt_labels": torch.tensor([1, 2]),
        "gt_bboxes_ignore": torch.zeros((0, 4)),
        "bbox_fields": ["gt_bboxes", "gt_bboxes_ignore"],
        "gt_masks": BitmapMasks(m, 32, 64),
        "mask_fields": ["gt_masks"],
    }
    out = Resize(img_scale=[128, 64], keep_ratio=True)(results)
    assert out["gt_labels"].tolist() == [1]
    assert len(out["gt_masks"]) == 1
    # exact: 2x, the mask's box is the box
    assert out["gt_masks"].bounding_boxes().tolist() == [[16, 8, 48, 40]]
    assert out["gt_bboxes"].tolist() == [[16, 8, 48, 40]]
    flipped = RandomFlip(flip_ratio=1.0, direction="diagonal")(out)
    assert flipped["gt_masks"].bounding_boxes().tolist() == flipped["gt_bboxes"].tolist()


def test_test_time_views_carry_their_own_masks(mask_coco) -> None:
    pipeline = [
        *_load(poly2mask=False),
        {
            "type": "MultiScaleFlipAug",
            "img_scale": [[96, 64], [192, 128]],
            "flip": True,
            "transforms": [
                {"type": "Resize", "keep_ratio": True},
                {"type": "RandomFlip"},
                {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_masks"]},
            ],
        },
    ]
    ds = _dataset(mask_coco, pipeline)
    views = ds[1]
    assert len(views["gt_masks"]) == 4
    for masks, boxes, img in zip(views["gt_masks"], views["gt_bboxes"], views["img"], strict=True):
        assert isinstance(masks, PolygonMasks)
        assert (masks.height, masks.width) == tuple(img.shape[-2:])
        assert torch.allclose(masks.bounding_boxes(), boxes)


def test_geometric_transforms_without_mask_support_refuse(mask_coco) -> None:
    ds = _dataset(mask_coco, _load(poly2mask=True))
    results = ds.pipeline(ds.results(0))
    with pytest.raises(DataError, match="RandomAffine is not supported with masks yet"):
        RandomAffine()(results)
    mosaic = build_pipeline([{"type": "Mosaic", "img_scale": [64, 64]}]).transforms[0]
    with pytest.raises(DataError, match="Mosaic is not supported with masks yet"):
        mosaic(results)


def test_with_mask_on_a_json_without_segmentations(tmp_path: Path) -> None:
    ann, prefix = write_coco(tmp_path, [image(1, W, H)], [box(1, 1, 1, [4, 4, 10, 10])], CATEGORIES)
    with pytest.raises(DataError, match=r"ann.json: annotation id 1 .* has no `segmentation`"):
        CocoDataset(str(ann), build_pipeline(_load(True)).transforms, img_prefix=str(prefix))
    # without masks the same file trains boxes as before
    CocoDataset(str(ann), build_pipeline(_load(True)[:1]).transforms, img_prefix=str(prefix))


def test_rle_of_the_wrong_size_names_the_image(tmp_path: Path) -> None:
    seg = {"size": [10, 10], "counts": [100]}
    anns = [box(1, 1, 1, [4, 4, 5, 5], segmentation=seg)]
    ann, prefix = write_coco(tmp_path, [image(1, W, H)], anns, CATEGORIES)
    ds = CocoDataset(str(ann), build_pipeline(_load(True)).transforms, img_prefix=str(prefix))
    with pytest.raises(DataError, match=r"0001.png \(image id 1\).*RLE `size` \[10, 10\]"):
        ds[0]

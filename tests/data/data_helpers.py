"""Helpers for the data tests: hand-made COCO files with real images, configs that use them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]
NORMALIZE = {"type": "Normalize", "mean": MEAN, "std": STD, "to_rgb": True}
TRAIN_PIPELINE: list[dict[str, Any]] = [
    {"type": "LoadImageFromFile"},
    {"type": "LoadAnnotations", "with_bbox": True},
    {"type": "Resize", "img_scale": [128, 96], "keep_ratio": True},
    {"type": "RandomFlip", "flip_ratio": 0.5},
    NORMALIZE,
    {"type": "Pad", "size_divisor": 32},
    {"type": "DefaultFormatBundle"},
    {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"]},
]
TEST_PIPELINE: list[dict[str, Any]] = [
    {"type": "LoadImageFromFile"},
    {
        "type": "MultiScaleFlipAug",
        "img_scale": [128, 96],
        "flip": False,
        "transforms": [
            {"type": "Resize", "keep_ratio": True},
            {"type": "RandomFlip"},
            NORMALIZE,
            {"type": "Pad", "size_divisor": 32},
            {"type": "ImageToTensor", "keys": ["img"]},
            {"type": "Collect", "keys": ["img"]},
        ],
    },
]


def write_image(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A real PNG (or JPEG, by suffix) of random pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_coco(
    root: Path,
    images: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    categories: list[dict[str, Any]],
    name: str = "ann.json",
    write_files: bool = True,
) -> tuple[Path, Path]:
    """Write `root/name` and a real image file per image under `root/img/`; (ann, prefix)."""
    img_dir = root / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    if write_files:
        for k, info in enumerate(images):
            write_image(img_dir / info["file_name"], info["width"], info["height"], seed=k)
    ann = root / name
    ann.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return ann, img_dir


def image(img_id: int, width: int = 64, height: int = 48) -> dict[str, Any]:
    return {"id": img_id, "file_name": f"{img_id:04d}.png", "width": width, "height": height}


def box(ann_id: int, img_id: int, cat: int, xywh: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": img_id,
        "category_id": cat,
        "bbox": xywh,
        "area": xywh[2] * xywh[3],
        "iscrowd": 0,
        **extra,
    }


CATEGORIES = [
    {"id": 1, "name": "cat"},
    {"id": 3, "name": "dog"},
    {"id": 7, "name": "bird"},
]


def write_config(path: Path, train: dict[str, Any], val: dict[str, Any] | None = None) -> Path:
    """A config YAML with data.train (and data.val) datasets (JSON is valid YAML)."""
    data: dict[str, Any] = {"samples_per_gpu": 2, "workers_per_gpu": 0, "train": train}
    if val is not None:
        data["val"] = val
    path.write_text(textwrap.dedent(json.dumps({"data": data}, indent=1)))
    return path


def coco_cfg(
    ann: Path, prefix: Path, pipeline: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "type": "CocoDataset",
        "ann_file": str(ann),
        "img_prefix": str(prefix),
        "pipeline": TRAIN_PIPELINE if pipeline is None else pipeline,
        **kw,
    }


def transform_results(width=64, height=32, boxes=((8, 4, 24, 20),), labels=(1,)):
    """A transform's input: a black image with a marker at the first box's top-left corner."""
    import torch

    img = torch.zeros((3, height, width), dtype=torch.uint8)
    img[:, 4, 8] = 255  # a marker at (x=8, y=4): the top-left corner of the first box
    return {
        "img": img,
        "img_shape": (height, width, 3),
        "ori_shape": (height, width, 3),
        "gt_bboxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "gt_labels": torch.tensor(labels, dtype=torch.int64),
        "gt_bboxes_ignore": torch.zeros((0, 4)),
        "bbox_fields": ["gt_bboxes", "gt_bboxes_ignore"],
    }


def marker(img):
    """(y, x) of the marker `transform_results` draws, wherever the transforms moved it."""
    import torch

    ys, xs = torch.nonzero(img[0] > 100, as_tuple=True)
    return int(ys.float().mean()), int(xs.float().mean())

"""Model test helpers: the tiny Faster R-CNN config, synthetic images with known boxes, metas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from detcli.config import load_config

TINY_MODEL = (
    Path(__file__).resolve().parents[2]
    / "configs"
    / "_base_"
    / "models"
    / "faster_rcnn_r18_fpn_tiny.yaml"
)
REPO = Path(__file__).resolve().parents[2]

PALETTE = [(1.0, 0.1, 0.1), (0.1, 1.0, 0.1), (0.1, 0.1, 1.0)]


def tiny_cfg(**changes: Any) -> dict[str, Any]:
    """The tiny model's `model:` section as a plain dict; `a__b=value` sets model.a.b."""
    cfg = copy.deepcopy(load_config(TINY_MODEL).model.to_dict())
    for key, value in changes.items():
        *parents, last = key.split("__")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def shapes_image(
    boxes: list[tuple[int, int, int, int]], labels: list[int], size: int = 128, seed: int = 0
) -> torch.Tensor:
    """A normalised (3, size, size) image: flat-coloured rectangles (colour = class) on noise."""
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(3, size, size, generator=gen) * 0.2
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        img[:, y1:y2, x1:x2] = torch.tensor(PALETTE[label])[:, None, None]
    return (img - 0.5) / 0.25


def meta(size: int = 128, ori: int | None = None, flip: str | None = None) -> dict[str, Any]:
    """Image metadata as the pipeline records it: resized from `ori` px to `size` px, maybe flipped."""
    ori = ori or size
    scale = size / ori
    return {
        "img_shape": (size, size, 3),
        "pad_shape": (size, size, 3),
        "ori_shape": (ori, ori, 3),
        "scale_factor": [scale, scale, scale, scale],
        "flip": flip is not None,
        "flip_direction": flip,
    }


def boxes(rows: list[list[float]]) -> torch.Tensor:
    """A float32 (N, 4) box tensor."""
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)

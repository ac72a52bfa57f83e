"""Images with their boxes, class names (and masks) drawn, raw or after the pipeline, as PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.io import write_png

from detcli.data.masks import from_coco
from detcli.data.protocol import DetectionDataset
from detcli.data.transforms.loading import load_image
from detcli.visualization import class_colours, draw_boxes

__all__ = ["CROWD_COLOUR", "class_colours", "denormalize", "draw", "show_samples"]

CROWD_COLOUR = (160, 160, 160)
# image, boxes, labels, crowd boxes, a name for the file, masks (bool (N, H, W)) or None
_Drawn = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str, torch.Tensor | None]


def draw(
    img: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    classes: tuple[str, ...],
    ignore: torch.Tensor | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
    caption: str | None = None,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """uint8 (3, H', W') with boxes and class names drawn (crowd/ignore regions in grey),
    upscaled when small (see `detcli.visualization.draw_boxes`); `colours`: one (r, g, b) per
    class (the dataset's palette), else evenly spaced hues; `caption` in the bottom-left corner;
    `masks`: bool (N, H, W), one per box, filled in the box's colour."""
    colours = colours or class_colours(len(classes))
    names = [classes[int(k)] for k in labels]
    tints = [colours[int(k)] for k in labels]
    if ignore is not None and len(ignore):
        boxes = torch.cat([boxes.float(), ignore.float()])
        names += ["crowd"] * len(ignore)
        tints += [CROWD_COLOUR] * len(ignore)
    if masks is not None and ignore is not None and len(ignore):
        masks = torch.cat([masks.bool(), masks.new_zeros((len(ignore), *masks.shape[1:]))])
    drawn: torch.Tensor = draw_boxes(img, boxes, names, tints, caption, masks=masks)
    return drawn


def denormalize(img: torch.Tensor, meta: dict[str, Any]) -> torch.Tensor:
    """A pipeline's float image back to displayable uint8 RGB (undoing Normalize)."""
    norm = meta.get("img_norm_cfg") or {}
    mean = torch.as_tensor(np.asarray(norm.get("mean", np.zeros(3))), dtype=torch.float32)
    std = torch.as_tensor(np.asarray(norm.get("std", np.ones(3))), dtype=torch.float32)
    out = img.float() * std.view(3, 1, 1) + mean.view(3, 1, 1)
    if not norm.get("to_rgb", True):
        out = out.flip(0)  # the model saw BGR
    return out.round().clamp(0, 255).to(torch.uint8)


def show_samples(
    dataset: DetectionDataset, out_dir: Path, num: int = 16, after_pipeline: bool = False
) -> list[Path]:
    """Write up to `num` PNGs (the dataset's first images) with their boxes; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = tuple(dataset.CLASSES)
    palette = getattr(_locate(dataset, 0)[0], "PALETTE", None) if len(dataset) else None
    written = []
    for idx in range(min(num, len(dataset))):
        if after_pipeline:
            img, boxes, labels, ignore, name, masks = _after_pipeline(dataset, idx)
        else:
            img, boxes, labels, ignore, name, masks = _raw(dataset, idx)
        path = out_dir / f"{idx:04d}_{name}.png"
        # Drawings of small images are upscaled: the caption keeps the real size in view.
        size = f"{img.shape[-1]}x{img.shape[-2]} px"
        drawn = draw(img, boxes, labels, classes, ignore, palette, size, masks)
        write_png(drawn, str(path))
        written.append(path)
    return written


def _locate(dataset: Any, idx: int) -> tuple[Any, int]:
    """The leaf dataset and its index for index `idx` of a (possibly wrapped) dataset."""
    if hasattr(dataset, "repeat_indices"):
        return _locate(dataset.dataset, int(dataset.repeat_indices[idx]))
    if hasattr(dataset, "times"):
        return _locate(dataset.dataset, idx % len(dataset.dataset))
    if hasattr(dataset, "cumulative_sizes"):
        part = int(np.searchsorted(dataset.cumulative_sizes, idx, side="right"))
        start = dataset.cumulative_sizes[part - 1] if part else 0
        return _locate(dataset.datasets[part], idx - start)
    return dataset, idx


def _raw(dataset: DetectionDataset, idx: int) -> _Drawn:
    leaf, j = _locate(dataset, idx)
    results = leaf.results(j)
    info = results["img_info"]
    path = str(Path(leaf.img_prefix) / info["filename"]) if leaf.img_prefix else info["filename"]
    ann = results["ann_info"]
    img = load_image(path, info["id"])
    masks = None
    if "masks" in ann:  # the pipeline loads masks: the dataset read the segmentations
        h, w = int(img.shape[-2]), int(img.shape[-1])
        masks = from_coco(ann["masks"], h, w, poly2mask=True).to_tensor()
    return (
        img,
        torch.from_numpy(ann["bboxes"]),
        torch.from_numpy(ann["labels"]),
        torch.from_numpy(ann["bboxes_ignore"]),
        f"id{info['id']}",
        masks,
    )


def _after_pipeline(dataset: DetectionDataset, idx: int) -> _Drawn:
    sample = dataset[idx]
    img, meta = sample["img"], sample["img_metas"]
    if isinstance(img, list):  # test-time views: show the first
        img, meta = img[0], meta[0]
    shown = denormalize(img, meta)
    empty = torch.zeros((0, 4))
    boxes = sample.get("gt_bboxes", empty)
    labels = sample.get("gt_labels", torch.zeros(0, dtype=torch.int64))
    ignore = sample.get("gt_bboxes_ignore", empty)
    flip = meta.get("flip_direction") if meta.get("flip") else None
    suffix = f"_flip-{flip}" if flip else ""
    gt_masks = sample.get("gt_masks")
    masks = None
    if gt_masks is not None and not isinstance(gt_masks, list):
        masks = _fit(gt_masks.to_tensor(), int(shown.shape[-2]), int(shown.shape[-1]))
    return shown, boxes, labels, ignore, f"id{meta.get('img_id', idx)}{suffix}", masks


def _fit(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Masks cut or zero-padded (bottom/right) to the drawn image's size."""
    out = masks.new_zeros((len(masks), height, width))
    h, w = min(height, masks.shape[-2]), min(width, masks.shape[-1])
    out[:, :h, :w] = masks[:, :h, :w]
    return out

"""Keeping boxes with their image: the box fields of a results dict, clipping, dropping empties."""

from __future__ import annotations

from typing import Any

import torch

# Each box field and the per-box field that must lose the same rows when a box is dropped.
LABELS_OF = {"gt_bboxes": "gt_labels"}


def box_fields(results: dict[str, Any]) -> list[str]:
    """The keys of `results` that hold (N, 4) xyxy boxes in the current image's pixels."""
    return [k for k in results.get("bbox_fields", ()) if k in results]


def clip_and_drop(results: dict[str, Any], height: int, width: int, clip: bool = True) -> None:
    """Clip every box field to the image and drop boxes left with no width or height."""
    for key in box_fields(results):
        boxes: torch.Tensor = results[key]
        if clip:
            boxes = torch.stack(
                (
                    boxes[:, 0].clamp(0, width),
                    boxes[:, 1].clamp(0, height),
                    boxes[:, 2].clamp(0, width),
                    boxes[:, 3].clamp(0, height),
                ),
                dim=1,
            )
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not bool(keep.all()):
            boxes = boxes[keep]
            labels = LABELS_OF.get(key)
            if labels in results:
                results[labels] = results[labels][keep]
        results[key] = boxes

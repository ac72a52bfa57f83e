"""Keeping boxes with their image: the box and mask fields of a results dict, clipping, and
dropping a box together with its label and mask."""

from __future__ import annotations

from typing import Any

import torch

from detcli.errors import DataError

# Each box field and the per-box field that must lose the same rows when a box is dropped.
LABELS_OF = {"gt_bboxes": "gt_labels"}
# Each box field and its instance masks (one per row), which follow the same rows.
MASKS_OF = {"gt_bboxes": "gt_masks"}


def box_fields(results: dict[str, Any]) -> list[str]:
    """The keys of `results` that hold (N, 4) xyxy boxes in the current image's pixels."""
    return [k for k in results.get("bbox_fields", ()) if k in results]


def mask_fields(results: dict[str, Any]) -> list[str]:
    """The keys of `results` that hold instance masks (`detcli.data.masks`)."""
    return [k for k in results.get("mask_fields", ()) if k in results]


def refuse_masks(results: dict[str, Any], owner: str) -> None:
    """A transform that cannot move masks yet stops, rather than leave them in the wrong place."""
    if mask_fields(results):
        raise DataError(
            f"{owner} is not supported with masks yet: it would move the boxes but not the "
            f"instance masks. Remove {owner} from a pipeline whose LoadAnnotations has "
            f"with_mask: true (or set with_mask: false to train boxes only)."
        )


def keep_rows(results: dict[str, Any], key: str, keep: torch.Tensor) -> None:
    """Keep rows `keep` of box field `key` and of its labels and masks."""
    results[key] = results[key][keep]
    for follower in (LABELS_OF.get(key), MASKS_OF.get(key)):
        if follower in results:
            results[follower] = results[follower][keep]


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
        results[key] = boxes
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not bool(keep.all()):
            keep_rows(results, key, keep)

"""Lint of instance masks: polygons that cover nothing or leave the image, RLE of the wrong
size, masks whose extent disagrees with the annotation's `bbox`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from detcli.data.masks import polygon_is_usable

# A mask's own box and the annotation's `bbox` overlapping less than this: one of them is wrong.
MIN_BOX_IOU = 0.5
EDGE_TOLERANCE = 1.0  # px a polygon may reach past the border (rounding in exports)

Add = Callable[..., None]  # add(kind, severity, message, ann_id=..., image_id=...)


def is_mask_file(anns: Sequence[dict[str, Any]]) -> bool:
    """An instance-segmentation file: some annotation has a non-empty `segmentation` (box-only
    exports often write `segmentation: []` everywhere)."""
    return any(a.get("segmentation") for a in anns)


def lint_masks(
    anns: Sequence[dict[str, Any]],
    width: np.ndarray,
    height: np.ndarray,
    add: Add,
) -> None:
    """Report every mask problem of `anns` (image sizes per annotation; NaN: unknown image)."""
    from pycocotools import mask as mask_utils

    mask_boxes = np.full((len(anns), 4), np.nan)  # xywh of each mask, NaN when it has none
    rles: list[dict[str, Any]] = []
    rle_rows: list[int] = []
    for k, ann in enumerate(anns):
        seg = ann.get("segmentation")
        ids = {"ann_id": int(ann["id"]), "image_id": int(ann["image_id"])}
        w, h = float(width[k]), float(height[k])
        if isinstance(seg, dict):
            rle = _rle(seg, w, h, ids, add)
            if rle is not None:
                rles.append(rle)
                rle_rows.append(k)
        elif isinstance(seg, list):
            mask_boxes[k] = _polygons(seg, w, h, ids, add)
        elif seg is not None:
            add(
                "malformed segmentation",
                "error",
                f"`segmentation` is {type(seg).__name__}, neither polygons (a list of "
                f"[x0, y0, x1, y1, ...]) nor RLE ({{size, counts}})",
                **ids,
            )
        elif not ann.get("iscrowd", 0):
            add("no mask", "warning", "no `segmentation`: with_mask cannot train on it", **ids)
    if rles:
        mask_boxes[rle_rows] = mask_utils.toBbox(rles)
    _disagreeing_boxes(anns, mask_boxes, add)


def _rle(
    seg: dict[str, Any], w: float, h: float, ids: dict[str, int], add: Add
) -> dict[str, Any] | None:
    """The RLE pycocotools reads, or None after reporting why it cannot."""
    from pycocotools import mask as mask_utils

    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and isinstance(counts, (str, list))):
        add("malformed RLE", "error", "an RLE needs `size: [height, width]` and `counts`", **ids)
        return None
    if not np.isnan(w) and [int(size[0]), int(size[1])] != [int(h), int(w)]:
        add(
            "RLE size mismatch",
            "error",
            f"RLE `size` {size} (height, width) differs from the {w:g}x{h:g} image; loading "
            f"its masks fails",
            **ids,
        )
        return None
    if isinstance(counts, list):
        if sum(int(c) for c in counts) != int(size[0]) * int(size[1]):
            add(
                "malformed RLE",
                "error",
                f"uncompressed RLE counts sum to {sum(counts)}, not height x width = "
                f"{int(size[0]) * int(size[1])}",
                **ids,
            )
            return None
        rle: dict[str, Any] = mask_utils.frPyObjects(seg, int(size[0]), int(size[1]))
        return rle
    return {"size": size, "counts": counts.encode()}


def _polygons(
    seg: list[Any], w: float, h: float, ids: dict[str, int], add: Add
) -> np.ndarray | float:
    """xywh around the usable polygons (NaN if none), reporting bad ones."""
    usable = [p for p in seg if polygon_is_usable(p)]
    bad = len(seg) - len(usable)
    if bad:
        lengths = [len(p) if isinstance(p, list) else type(p).__name__ for p in seg]
        severity: Literal["error", "warning"] = "warning" if usable else "error"
        what = (
            "the instance keeps its other polygons"
            if usable
            else ("the instance has no region: training ignores it (as MMDetection does)")
        )
        add(
            "invalid polygon",
            severity,
            f"{bad} polygon(s) have fewer than 3 points or an odd number of coordinates "
            f"(coordinate counts {lengths}); {what}",
            **ids,
        )
    if not usable:
        return np.nan
    xy = np.concatenate([np.asarray(p, dtype=np.float64) for p in usable]).reshape(-1, 2)
    x0, y0 = xy.min(0)
    x1, y1 = xy.max(0)
    if not np.isnan(w):
        outside = x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h
        beyond = x0 < -EDGE_TOLERANCE or y0 < -EDGE_TOLERANCE
        beyond = beyond or x1 > w + EDGE_TOLERANCE or y1 > h + EDGE_TOLERANCE
        if outside or beyond:
            how = "entirely" if outside else "partly"
            add(
                f"polygon {how} outside image",
                "error" if outside else "warning",
                f"polygon points span x {x0:g}..{x1:g}, y {y0:g}..{y1:g}, {how} outside the "
                f"{w:g}x{h:g} image",
                **ids,
            )
    return np.array([x0, y0, x1 - x0, y1 - y0])


def _disagreeing_boxes(anns: Sequence[dict[str, Any]], mask_boxes: np.ndarray, add: Add) -> None:
    """Masks whose own box overlaps the annotation's `bbox` by IoU < MIN_BOX_IOU."""
    has = ~np.isnan(mask_boxes).any(axis=1)
    if not has.any():
        return
    rows = np.flatnonzero(has)
    given = np.array([anns[k]["bbox"] for k in rows.tolist()], dtype=np.float64).reshape(-1, 4)
    mine = mask_boxes[rows]
    ix = np.minimum(given[:, 0] + given[:, 2], mine[:, 0] + mine[:, 2])
    ix -= np.maximum(given[:, 0], mine[:, 0])
    iy = np.minimum(given[:, 1] + given[:, 3], mine[:, 1] + mine[:, 3])
    iy -= np.maximum(given[:, 1], mine[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = given[:, 2] * given[:, 3] + mine[:, 2] * mine[:, 3] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    for j in np.flatnonzero(iou < MIN_BOX_IOU).tolist():
        k = int(rows[j])
        add(
            "mask and box disagree",
            "warning",
            f"the mask spans {np.round(mine[j], 1).tolist()} (x, y, w, h) but bbox is "
            f"{anns[k]['bbox']} (IoU {iou[j]:.2f} < {MIN_BOX_IOU}); one of them is wrong",
            ann_id=int(anns[k]["id"]),
            image_id=int(anns[k]["image_id"]),
        )

"""Test-time augmentation: views from the config's MultiScaleFlipAug, merged into one result.

`tta_dataset_cfg` turns the test pipeline's MultiScaleFlipAug on (flip, optional scales).
The views are then merged in original image pixels by one of:

- `nms`: every view predicted on its own, all boxes pooled, class-wise NMS (torchvision).
- `wbf`: the same pool, weighted box fusion: overlapping boxes of a class are averaged,
  weighted by score, and the fused score is the cluster's score sum over the number of views
  (a box only one view found is down-weighted). Clusters are formed in one pass: NMS picks
  the cluster heads, every box joins the head it overlaps most (vectorised, no box loop).
- `mean`: the detector's own `aug_test` (mmdet: proposals merged, box-head outputs averaged).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_iou, nms

from detcli.errors import ConfigError, ModelError
from detcli.structures import Detections

MergeMethod = Literal["nms", "wbf", "mean"]
MERGE_METHODS = ("nms", "wbf", "mean")


def tta_dataset_cfg(
    dataset_cfg: Mapping[str, Any],
    where: str,
    scales: Sequence[Sequence[int]] | None = None,
    flip: bool = True,
) -> dict[str, Any]:
    """A copy of a dataset config whose test-time augmentation has `flip` (and `scales`)."""
    cfg = copy.deepcopy(dict(dataset_cfg))
    found = _set_tta(cfg, scales, flip)
    if not found:
        raise ConfigError(
            f"--tta needs test-time augmentation in {where}.pipeline: a MultiScaleFlipAug "
            "(2.x: LoadImageFromFile, then MultiScaleFlipAug with img_scale, flip and inner "
            "Resize/RandomFlip/Normalize/Pad steps), a TestTimeAug (3.x), or a 3.x test "
            "pipeline (LoadImageFromFile, Resize, ..., PackDetInputs) to build one from."
        )
    return cfg


def _set_tta(cfg: dict[str, Any], scales: Sequence[Sequence[int]] | None, flip: bool) -> int:
    """Edit every leaf dataset's test-time augmentation in place; returns how many it found.

    2.x pipelines hold a MultiScaleFlipAug; 3.x ones a TestTimeAug, or none at all: then the
    steps after LoadImageFromFile become one (MMDetection 3.x's `tta_pipeline` shape).
    """
    found = 0
    for key in ("dataset",):
        if isinstance(cfg.get(key), Mapping):
            cfg[key] = dict(cfg[key])
            found += _set_tta(cfg[key], scales, flip)
    for sub in cfg.get("datasets") or []:
        found += _set_tta(sub, scales, flip)
    pipeline = cfg.get("pipeline") or []
    for step in pipeline:
        if isinstance(step, dict) and step.get("type") == "MultiScaleFlipAug":
            inner = [t.get("type") for t in step.get("transforms") or [] if isinstance(t, dict)]
            if flip and "RandomFlip" not in inner:
                raise ConfigError(
                    "--tta flips images, but the test pipeline's MultiScaleFlipAug has no inner "
                    "RandomFlip step to apply the flip; add {type: RandomFlip} after Resize."
                )
            step["flip"] = flip
            if scales:
                step["img_scale"] = [list(s) for s in scales]
            found += 1
        elif isinstance(step, dict) and step.get("type") == "TestTimeAug":
            step["transforms"] = _test_time_aug(step.get("transforms") or [], scales, flip)
            found += 1
    if not found and _plain_3x_pipeline(pipeline):
        first, rest = pipeline[0], pipeline[1:]
        views = _test_time_aug([[step] for step in rest], scales, flip)
        cfg["pipeline"] = [first, {"type": "TestTimeAug", "transforms": views}]
        found += 1
    return found


def _plain_3x_pipeline(pipeline: list[Any]) -> bool:
    """LoadImageFromFile, ..., Resize, ..., PackDetInputs: a 3.x test pipeline without TTA."""
    types = [step.get("type") if isinstance(step, dict) else None for step in pipeline]
    return (
        bool(types)
        and types[0] == "LoadImageFromFile"
        and types[-1] == "PackDetInputs"
        and ("Resize" in types)
    )


def _test_time_aug(
    transforms: list[Any], scales: Sequence[Sequence[int]] | None, flip: bool
) -> list[list[dict[str, Any]]]:
    """TestTimeAug's lists of alternatives with `scales` as its resize views and, with `flip`,
    a flipped and an unflipped view of each (mmcv's cartesian product)."""
    lists = [list(group) if isinstance(group, list) else [group] for group in transforms]
    kinds = [{step.get("type") for step in group if isinstance(step, dict)} for group in lists]
    resize = next((i for i, k in enumerate(kinds) if k == {"Resize"}), None)
    if scales and resize is not None:
        template = {k: v for k, v in lists[resize][0].items() if k not in ("scale", "img_scale")}
        lists[resize] = [{**template, "scale": list(s)} for s in scales]
    flips = next((i for i, k in enumerate(kinds) if k == {"RandomFlip"}), None)
    views = (
        [{"type": "RandomFlip", "prob": 1.0}, {"type": "RandomFlip", "prob": 0.0}]
        if flip
        else [{"type": "RandomFlip", "prob": 0.0}]
    )
    if flips is not None:
        lists[flips] = views
    elif flip:
        lists.insert(resize + 1 if resize is not None else 0, views)
    return lists


def merge_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_thr: float,
    max_dets: int,
    masks: Tensor | None = None,
) -> Detections:
    """Class-wise NMS over the pooled views' boxes, best `max_dets` kept (with their masks:
    every view's masks are in original image pixels already)."""
    keep = batched_nms(boxes, scores, labels, iou_thr)[:max_dets]
    return Detections(
        boxes[keep], scores[keep], labels[keep], None if masks is None else masks[keep]
    )


def weighted_box_fusion(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    num_views: int,
    iou_thr: float,
    max_dets: int,
    masks: Tensor | None = None,
) -> Detections:
    """Fuse overlapping same-class boxes of several views (score-weighted mean box); a
    cluster's mask is its best-scoring box's (masks of different views are not averaged)."""
    if boxes.numel() == 0:
        return Detections(boxes, scores, labels, masks)
    # Shift each class far apart so boxes of different classes never overlap.
    shift = (labels.to(boxes.dtype) * (boxes.max() - boxes.min() + 1))[:, None]
    shifted = boxes + shift
    heads = nms(shifted, scores, iou_thr)  # every box overlaps some head above iou_thr
    cluster = box_iou(shifted, shifted[heads]).argmax(dim=1)
    n = heads.numel()
    weight_sum = scores.new_zeros(n).index_add_(0, cluster, scores)
    fused = boxes.new_zeros(n, 4).index_add_(0, cluster, boxes * scores[:, None])
    fused = fused / weight_sum.clamp_min(1e-12)[:, None]
    count = torch.bincount(cluster, minlength=n).to(scores.dtype)
    fused_scores = weight_sum / count * count.clamp(max=num_views) / num_views
    order = fused_scores.argsort(descending=True)[:max_dets]
    fused_masks = None if masks is None else masks[heads][order]
    return Detections(fused[order], fused_scores[order], labels[heads][order], fused_masks)


class ViewMerger(nn.Module):
    """Runs the detector on each view of an AugBatch and merges per image (`nms` or `wbf`)."""

    def __init__(self, model: nn.Module, method: MergeMethod, iou_thr: float, max_dets: int):
        super().__init__()
        if method not in ("nms", "wbf"):
            raise ConfigError(f"ViewMerger merges by nms or wbf, not {method!r}.")
        self.model, self.method, self.iou_thr, self.max_dets = model, method, iou_thr, max_dets

    def forward(self, img: Any, img_metas: Any, return_loss: bool = False) -> list[Detections]:
        if isinstance(img, Tensor):
            single: list[Detections] = self.model(img=img, img_metas=img_metas, return_loss=False)
            return single
        per_view = [
            self.model(img=v, img_metas=m, return_loss=False)
            for v, m in zip(img, img_metas, strict=True)
        ]
        merged = []
        for views in zip(*per_view, strict=True):  # one image, all its views
            boxes = torch.cat([d.boxes.float() for d in views])
            scores = torch.cat([d.scores.float() for d in views])
            labels = torch.cat([d.labels for d in views])
            masks = _pooled_masks(views)
            if self.method == "nms":
                merged.append(merge_nms(boxes, scores, labels, self.iou_thr, self.max_dets, masks))
            else:
                merged.append(
                    weighted_box_fusion(
                        boxes, scores, labels, len(views), self.iou_thr, self.max_dets, masks
                    )
                )
        return merged


def _pooled_masks(views: Sequence[Detections]) -> Tensor | None:
    """Every view's masks of one image in one tensor (all at its original size), or None."""
    if all(d.masks is None for d in views):
        return None
    if any(d.masks is None for d in views):
        raise ModelError("Some TTA views predicted masks and others did not; cannot merge.")
    return torch.cat([d.masks for d in views if d.masks is not None])


def merge_settings(model: Mapping[str, Any], method: MergeMethod) -> tuple[float, int]:
    """(IoU threshold, max detections per image) for merging: the RoI head's test settings
    (`model.test_cfg.rcnn`, see RunSettings.model); WBF's customary 0.55 IoU when fusing."""
    rcnn = ((model.get("test_cfg") or {}).get("rcnn")) or {}
    iou = float((rcnn.get("nms") or {}).get("iou_threshold", 0.5))
    return (0.55 if method == "wbf" else iou), int(rcnn.get("max_per_img", 100))

"""MMDetection 2.x / 3.x Faster R-CNN checkpoints: module names onto detcli's, class names.

mmdet and detcli share most names (`neck.lateral_convs.0.conv`, `roi_head.bbox_head.fc_cls`,
background-last classifier). What differs: detcli's backbones wrap a timm network under
`backbone.body.`, and detcli's `rpn_conv` is a Sequential (conv, ReLU) even with one conv.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

_RPN_SINGLE = re.compile(r"^rpn_head\.rpn_conv\.(weight|bias)$")
_RPN_STACKED = re.compile(r"^rpn_head\.rpn_conv\.(\d+)\.conv\.(weight|bias)$")


def is_mmdet(checkpoint: Mapping[str, Any], weights: Mapping[str, Tensor]) -> bool:
    """Whether the file is an MMDetection checkpoint (its meta, or its RPN's names)."""
    meta = checkpoint.get("meta")
    if isinstance(meta, Mapping) and (
        "mmdet_version" in meta or "dataset_meta" in meta or "mmengine_version" in meta
    ):
        return True
    return any(_RPN_SINGLE.match(k) or _RPN_STACKED.match(k) for k in weights)


def mmdet_version(checkpoint: Mapping[str, Any]) -> str:
    """`mmdet 3.x` (mmengine meta with dataset_meta) or `mmdet 2.x` (meta.CLASSES)."""
    meta = checkpoint.get("meta")
    if isinstance(meta, Mapping) and ("dataset_meta" in meta or "mmengine_version" in meta):
        return "mmdet 3.x"
    return "mmdet 2.x"


def mmdet_classes(checkpoint: Mapping[str, Any]) -> list[str] | None:
    """Class names of the training set: 3.x `meta.dataset_meta.classes`, 2.x `meta.CLASSES`."""
    meta = checkpoint.get("meta")
    if not isinstance(meta, Mapping):
        return None
    dataset_meta = meta.get("dataset_meta")
    classes = dataset_meta.get("classes") if isinstance(dataset_meta, Mapping) else None
    classes = classes or meta.get("CLASSES")
    return [str(c) for c in classes] if classes else None


def rename_mmdet(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """mmdet names -> detcli names, except the backbone body (see `formats.match_backbone`)."""
    out: dict[str, Tensor] = {}
    for key, value in weights.items():
        if m := _RPN_SINGLE.match(key):
            key = f"rpn_head.rpn_conv.0.{m[1]}"
        elif m := _RPN_STACKED.match(key):
            key = f"rpn_head.rpn_conv.{2 * int(m[1])}.{m[2]}"  # Sequential: conv, ReLU, ...
        out[key] = value
    return out

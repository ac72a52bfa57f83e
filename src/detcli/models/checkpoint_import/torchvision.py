"""torchvision `fasterrcnn_resnet50_fpn` / `maskrcnn_resnet50_fpn` (and `_v2`) state dicts onto
detcli's module names (MMDetection's: the mask head is FCNMaskHead's `convs`, `upsample`,
`conv_logits`).

torchvision's classifier puts background FIRST (`cls_score` row 0, and four `bbox_pred` rows
for it); detcli (as MMDetection) puts background LAST and regresses object classes only. Its
COCO-trained weights have 91 rows: background plus COCO's 90 category ids, 10 of them unused
(`N/A`), so the matching detcli model has num_classes 90.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

_RENAMES = (
    # FPN: Conv2dNormActivation wraps conv (.0) and, in _v2, BatchNorm (.1); older files
    # name the conv directly.
    (
        re.compile(r"^backbone\.fpn\.inner_blocks\.(\d+)\.(?:0\.)?(weight|bias)$"),
        r"neck.lateral_convs.\1.conv.\2",
    ),
    (
        re.compile(r"^backbone\.fpn\.layer_blocks\.(\d+)\.(?:0\.)?(weight|bias)$"),
        r"neck.fpn_convs.\1.conv.\2",
    ),
    (
        re.compile(r"^backbone\.fpn\.inner_blocks\.(\d+)\.1\.(.+)$"),
        r"neck.lateral_convs.\1.norm.\2",
    ),
    (re.compile(r"^backbone\.fpn\.layer_blocks\.(\d+)\.1\.(.+)$"), r"neck.fpn_convs.\1.norm.\2"),
    (re.compile(r"^rpn\.head\.cls_logits\.(weight|bias)$"), r"rpn_head.rpn_cls.\1"),
    (re.compile(r"^rpn\.head\.bbox_pred\.(weight|bias)$"), r"rpn_head.rpn_reg.\1"),
    (
        re.compile(r"^roi_heads\.box_head\.fc6\.(weight|bias)$"),
        r"roi_head.bbox_head.shared_fcs.0.\1",
    ),
    (
        re.compile(r"^roi_heads\.box_head\.fc7\.(weight|bias)$"),
        r"roi_head.bbox_head.shared_fcs.1.\1",
    ),
    # Mask head: four 3x3 convs (Conv2dNormActivation: conv at .0; older files `mask_fcnN`).
    (
        re.compile(r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$"),
        r"roi_head.mask_head.convs.\1.conv.\2",
    ),
    (
        re.compile(r"^roi_heads\.mask_predictor\.conv5_mask\.(weight|bias)$"),
        r"roi_head.mask_head.upsample.\1",
    ),
)
_MASK_FCN = re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$")
_MASK_LOGITS = "roi_heads.mask_predictor.mask_fcn_logits."
_RPN_CONV = re.compile(r"^rpn\.head\.conv\.(?:(\d+)\.0\.)?(weight|bias)$")
_CLS = "roi_heads.box_predictor.cls_score."
_REG = "roi_heads.box_predictor.bbox_pred."


def is_torchvision(weights: Mapping[str, Tensor]) -> bool:
    """Whether the keys are torchvision's GeneralizedRCNN names (`backbone.body`, `rpn.head`)."""
    return any(k.startswith("rpn.head.") for k in weights) and any(
        k.startswith("backbone.body.") for k in weights
    )


def coco_names(num_rows: int) -> list[str] | None:
    """torchvision's COCO class names (background dropped) when the classifier has 91 rows."""
    if num_rows != 91:
        return None
    from torchvision.models import _meta

    return list(_meta._COCO_CATEGORIES[1:])


def rename_torchvision(weights: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """(weights in detcli names, notes on what changed); the backbone body keeps its names."""
    out: dict[str, Tensor] = {}
    notes: list[str] = []
    for key, value in weights.items():
        new = key
        if m := _RPN_CONV.match(key):
            new = f"rpn_head.rpn_conv.{2 * int(m[1] or 0)}.{m[2]}"  # Sequential: conv, ReLU
        elif m := _MASK_FCN.match(key):
            new = f"roi_head.mask_head.convs.{int(m[1]) - 1}.conv.{m[2]}"
        elif key.startswith(_MASK_LOGITS):
            new = "roi_head.mask_head.conv_logits." + key[len(_MASK_LOGITS) :]
            value = value[1:]  # one mask per object class: the background's is dropped
        elif key.startswith(_CLS):
            new = "roi_head.bbox_head.fc_cls." + key[len(_CLS) :]
            value = torch.cat([value[1:], value[:1]])  # background first -> last
        elif key.startswith(_REG):
            new = "roi_head.bbox_head.fc_reg." + key[len(_REG) :]
            value = value[4:]  # detcli regresses object classes only
        else:
            for pattern, repl in _RENAMES:
                if pattern.match(key):
                    new = pattern.sub(repl, key)
                    break
        out[new] = value
    if any(k.startswith(_CLS) for k in weights):
        notes.append(
            "torchvision classifier: background row moved from first to last, its 4 box "
            "regression rows dropped"
        )
    if any(k.startswith(_MASK_LOGITS) for k in weights):
        notes.append("torchvision mask predictor: the background's mask channel dropped")
    return out, notes

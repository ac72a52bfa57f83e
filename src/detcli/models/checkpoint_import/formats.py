"""Which framework wrote a checkpoint, and its weights under detcli's module names."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from detcli.models.backbones.pretrained import _source_key
from detcli.models.checkpoint_import.mmdet import (
    is_mmdet,
    mmdet_classes,
    mmdet_version,
    rename_mmdet,
)
from detcli.models.checkpoint_import.torchvision import (
    coco_names,
    is_torchvision,
    rename_torchvision,
)

BODY = "backbone.body."


@dataclass
class ImportedWeights:
    """A checkpoint's tensors in detcli's names, with the class names of its classifier rows."""

    source: str  # detcli | mmdet 2.x | mmdet 3.x | torchvision
    weights: dict[str, Tensor]
    classes: list[str] | None  # names of the classifier's object rows, in row order
    notes: list[str] = field(default_factory=list)


def import_weights(
    checkpoint: Mapping[str, Any], weights: Mapping[str, Tensor], model_keys: Collection[str]
) -> ImportedWeights:
    """Detect the format from keys and meta; rename onto the model whose keys are `model_keys`."""
    if is_torchvision(weights):
        renamed, notes = rename_torchvision(weights)
        rows = weights.get("roi_heads.box_predictor.cls_score.weight")
        names = coco_names(int(rows.shape[0])) if rows is not None else None
        return ImportedWeights("torchvision", match_backbone(renamed, model_keys), names, notes)
    if is_mmdet(checkpoint, weights):
        renamed = rename_mmdet(weights)
        return ImportedWeights(
            mmdet_version(checkpoint),
            match_backbone(renamed, model_keys),
            mmdet_classes(checkpoint),
        )
    return ImportedWeights("detcli", dict(weights), _detcli_classes(checkpoint))


def _detcli_classes(checkpoint: Mapping[str, Any]) -> list[str] | None:
    meta = checkpoint.get("meta")
    classes = meta.get("CLASSES") if isinstance(meta, Mapping) else None
    return [str(c) for c in classes] if classes else None


def match_backbone(weights: Mapping[str, Tensor], model_keys: Collection[str]) -> dict[str, Tensor]:
    """Put `backbone.*` tensors under the model's `backbone.body.*` names.

    detcli's backbones are timm feature extractors: ResNet/ResNeXt/HRNet keep the names
    torchvision and mmdet use (`layer1.0.conv1`), other timm nets flatten `stages.0` to
    `stages_0`; pretrained.py's `_source_key` knows both spellings.
    """
    source = {
        k[len("backbone.") :].removeprefix("body."): v
        for k, v in weights.items()
        if k.startswith("backbone.")
    }
    out = {k: v for k, v in weights.items() if not k.startswith("backbone.")}
    used: set[str] = set()
    for key in model_keys:
        if not key.startswith(BODY):
            continue
        src = _source_key(key[len(BODY) :], source)
        if src is not None:
            out[key] = source[src]
            used.add(src)
    # what matched nothing stays, under the body, so the report lists it as unexpected
    out.update({BODY + k: v for k, v in source.items() if k not in used})
    return out

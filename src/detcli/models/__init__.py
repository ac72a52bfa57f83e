"""Detection models assembled from config: backbones, necks, heads, task modules, losses.

Importing this package registers every part in `detcli.registry.MODELS` under mmdet's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detcli.errors import ModelError
from detcli.models import backbones, dense_heads, detectors, losses, necks, roi_heads, task_modules
from detcli.models.backbones import LoadReport, load_pretrained
from detcli.models.data_preprocessor import DetDataPreprocessor
from detcli.models.detectors import FasterRCNN, TwoStageDetector
from detcli.registry import MODELS


def build_model(cfg_model: Mapping[str, Any]) -> nn.Module:
    """The detector a `model:` section describes (a FasterRCNN for the reference configs).

    Backbone weights stay random until `model.init_weights()` loads `init_cfg`; evaluation
    and `load_from` need no network that way.
    """
    model = MODELS.build(cfg_model)
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model.type {cfg_model.get('type')!r} built a {type(model).__name__}, not a "
            "torch.nn.Module detector."
        )
    return model


__all__ = [
    "DetDataPreprocessor",
    "FasterRCNN",
    "LoadReport",
    "TwoStageDetector",
    "backbones",
    "build_model",
    "dense_heads",
    "detectors",
    "load_pretrained",
    "losses",
    "necks",
    "roi_heads",
    "task_modules",
]

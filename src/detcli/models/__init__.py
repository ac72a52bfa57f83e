"""Detection models assembled from config: backbones, necks, heads, task modules, losses.

Importing this package registers every part in `detcli.registry.MODELS` under mmdet's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detcli.models import backbones, dense_heads, detectors, losses, necks, roi_heads, task_modules
from detcli.models.backbones import LoadReport, load_pretrained
from detcli.models.detectors import FasterRCNN, TwoStageDetector
from detcli.registry import MODELS


def build_model(cfg_model: Mapping[str, Any]) -> Any:
    """The detector a `model:` config section describes (random weights until `init_weights()`)."""
    return MODELS.build(cfg_model)


__all__ = [
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

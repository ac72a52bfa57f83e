"""Detection models assembled from config: backbones, necks, heads, task modules, losses.

Importing this package registers every part in `detcli.registry.MODELS` under mmdet's names.
Each part is an ordinary `nn.Module` taking built parts and plain numbers; `detcli.model_config`
builds one from a `model:` mapping.
"""

from __future__ import annotations

from detcli.model_config import build_model
from detcli.models import backbones, dense_heads, detectors, losses, necks, roi_heads, task_modules
from detcli.models.backbones import (
    HRNet,
    LoadReport,
    ResNet,
    ResNeXt,
    TimmBackbone,
    load_pretrained,
)
from detcli.models.backbones.base import Backbone
from detcli.models.data_preprocessor import DetDataPreprocessor
from detcli.models.dense_heads import RPNHead
from detcli.models.detectors import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector
from detcli.models.losses import CrossEntropyLoss, L1Loss, SmoothL1Loss
from detcli.models.necks import FPN, HRFPN
from detcli.models.roi_heads import (
    CascadeRoIHead,
    FCNMaskHead,
    RoIAlign,
    Shared2FCBBoxHead,
    SingleRoIExtractor,
    StandardRoIHead,
)
from detcli.models.run_cfgs import NmsCfg, ProposalCfg, RCNNTestCfg, StageTrainCfg
from detcli.models.shapes import FeatureMaps, RoIFeatures, WiringError
from detcli.models.task_modules import (
    AnchorGenerator,
    DeltaXYWHBBoxCoder,
    MaxIoUAssigner,
    RandomSampler,
)

__all__ = [
    "FPN",
    "HRFPN",
    "AnchorGenerator",
    "Backbone",
    "CascadeRCNN",
    "CascadeRoIHead",
    "CrossEntropyLoss",
    "DeltaXYWHBBoxCoder",
    "DetDataPreprocessor",
    "FCNMaskHead",
    "FasterRCNN",
    "FeatureMaps",
    "HRNet",
    "L1Loss",
    "LoadReport",
    "MaskRCNN",
    "MaxIoUAssigner",
    "NmsCfg",
    "ProposalCfg",
    "RCNNTestCfg",
    "RPNHead",
    "RandomSampler",
    "ResNeXt",
    "ResNet",
    "RoIAlign",
    "RoIFeatures",
    "Shared2FCBBoxHead",
    "SingleRoIExtractor",
    "SmoothL1Loss",
    "StageTrainCfg",
    "StandardRoIHead",
    "TimmBackbone",
    "TwoStageDetector",
    "WiringError",
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

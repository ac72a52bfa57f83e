"""Backbones (MODELS registry): timm networks with mmdet's keys and training knobs."""

from detcli.models.backbones.hrnet import HRNet
from detcli.models.backbones.pretrained import LoadReport, load_pretrained, read_state_dict
from detcli.models.backbones.resnet import ResNet, ResNeXt
from detcli.models.backbones.timm_backbone import TimmBackbone
from detcli.models.backbones.timm_features import TimmFeatures

__all__ = [
    "HRNet",
    "LoadReport",
    "ResNeXt",
    "ResNet",
    "TimmBackbone",
    "TimmFeatures",
    "load_pretrained",
    "read_state_dict",
]

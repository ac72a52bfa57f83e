"""Losses (MODELS registry, mmdet names): classification and box regression."""

from detcli.models.losses.cross_entropy import CrossEntropyLoss
from detcli.models.losses.focal import FocalLoss
from detcli.models.losses.regression import GIoULoss, L1Loss, SmoothL1Loss

__all__ = ["CrossEntropyLoss", "FocalLoss", "GIoULoss", "L1Loss", "SmoothL1Loss"]

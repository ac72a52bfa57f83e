"""Detectors (MODELS registry): FasterRCNN, MaskRCNN, CascadeRCNN."""

from detcli.models.detectors.two_stage import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ["CascadeRCNN", "FasterRCNN", "MaskRCNN", "TwoStageDetector"]

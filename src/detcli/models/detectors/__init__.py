"""Detectors (MODELS registry): FasterRCNN, CascadeRCNN."""

from detcli.models.detectors.two_stage import CascadeRCNN, FasterRCNN, TwoStageDetector

__all__ = ["CascadeRCNN", "FasterRCNN", "TwoStageDetector"]

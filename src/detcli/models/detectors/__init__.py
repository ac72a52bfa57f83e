"""Detectors (MODELS registry): FasterRCNN."""

from detcli.models.detectors.two_stage import FasterRCNN, TwoStageDetector

__all__ = ["FasterRCNN", "TwoStageDetector"]

"""Evaluation: COCO bbox and segm metrics, per-class tables, PR curves and results files."""

from detcli.evaluation.coco_metric import (
    CocoMetric,
    CocoScores,
    evaluate_detections,
    score_detections,
)
from detcli.evaluation.masks import encode_masks, masks_to_rles, rles_to_masks

__all__ = [
    "CocoMetric",
    "CocoScores",
    "encode_masks",
    "evaluate_detections",
    "masks_to_rles",
    "rles_to_masks",
    "score_detections",
]

"""Evaluation: COCO bbox metrics, per-class tables, PR curves and results files."""

from detcli.evaluation.coco_metric import (
    CocoMetric,
    CocoScores,
    evaluate_detections,
    score_detections,
)

__all__ = ["CocoMetric", "CocoScores", "evaluate_detections", "score_detections"]

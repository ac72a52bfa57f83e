"""Evaluation: COCO bbox metrics of a model's detections (`evaluate_detections`, `CocoMetric`)."""

from detcli.evaluation.coco_metric import CocoMetric, evaluate_detections

__all__ = ["CocoMetric", "evaluate_detections"]

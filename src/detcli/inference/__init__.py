"""Inference with a trained checkpoint: `evaluate` (COCO eval of a split), `predict` (images).

`from detcli.inference import evaluate, predict`; the names load on first use (torch included).
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

_LAZY = {
    "evaluate": "detcli.inference.evaluate",
    "evaluate_results": "detcli.inference.evaluate",
    "EvalResult": "detcli.inference.evaluate",
    "EvaluationInterrupted": "detcli.inference.evaluate",
    "predict": "detcli.inference.predict",
    "PredictResult": "detcli.inference.predict",
    "ImagePrediction": "detcli.inference.predict",
    "load_detector": "detcli.inference.model_loading",
    "Precision": "detcli.inference.model_loading",
    "collect_images": "detcli.inference.inputs",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

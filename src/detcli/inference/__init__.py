"""Inference with a trained checkpoint: `evaluate` (COCO eval of a split), `predict` (images).

`from detcli.inference import evaluate, predict`; the names load on first use (torch included).
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "detcli.inference.evaluate": [
            "evaluate",
            "evaluate_results",
            "EvalResult",
            "EvaluationInterrupted",
        ],
        "detcli.inference.predict": ["predict", "PredictResult", "ImagePrediction"],
        "detcli.inference.model_loading": ["load_detector", "Precision"],
        "detcli.inference.inputs": ["collect_images"],
    },
)

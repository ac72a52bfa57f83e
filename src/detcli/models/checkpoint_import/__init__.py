"""Checkpoints from other frameworks (MMDetection 2.x / 3.x, torchvision) in detcli's names.

`import_weights` detects where a checkpoint comes from by its keys and meta, renames its
tensors onto detcli's modules and moves classifier rows into detcli's background-last layout;
`classes` re-orders class-specific rows by class name; `fit` says what loads and what does not.
"""

from detcli.models.checkpoint_import.classes import ClassMapping, map_class_rows
from detcli.models.checkpoint_import.fit import FitReport, fit_report
from detcli.models.checkpoint_import.formats import ImportedWeights, import_weights

__all__ = [
    "ClassMapping",
    "FitReport",
    "ImportedWeights",
    "fit_report",
    "import_weights",
    "map_class_rows",
]

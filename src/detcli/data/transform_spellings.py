"""MMDetection 2.x transform keys and types that a 3.x pipeline should not hold, with the 3.x
replacement to suggest. Imports nothing heavy: `detcli check` (detcli.config) reads it.

The transforms themselves take both spellings (see detcli.data.transforms); this table is only
for advice when a config written the 3.x way still carries a 2.x habit.
"""

from __future__ import annotations

# (transform type, 2.x-only key) -> what a 3.x pipeline writes instead.
KEY_REPLACEMENTS: dict[tuple[str, str], str] = {
    ("Resize", "img_scale"): "scale",
    ("Resize", "multiscale_mode"): "RandomResize / RandomChoiceResize",
    ("Resize", "ratio_range"): "RandomResize (scale, ratio_range)",
    ("Resize", "bbox_clip_border"): "clip_object_border",
    ("RandomFlip", "flip_ratio"): "prob",
    ("LoadImageFromFile", "file_client_args"): "backend_args",
    ("LoadAnnotations", "file_client_args"): "backend_args",
}

# 2.x-only transform type -> its 3.x replacement, anywhere in a 3.x pipeline.
TYPE_REPLACEMENTS: dict[str, str] = {
    "Normalize": "model.data_preprocessor (mean, std, bgr_to_rgb)",
    "DefaultFormatBundle": "PackDetInputs",
    "Collect": "PackDetInputs",
    "ImageToTensor": "PackDetInputs",
    "MultiScaleFlipAug": "TestTimeAug",
}

# 2.x-only types whose replacement depends on the pipeline: in a training pipeline Pad belongs
# to the model's data_preprocessor (a test pipeline may keep a fixed-size Pad).
TRAIN_TYPE_REPLACEMENTS: dict[str, str] = {
    "Pad": "model.data_preprocessor.pad_size_divisor",
}


def key_replacement(transform_type: str, key: str) -> str | None:
    """The 3.x replacement for a 2.x-only `key` of `transform_type`, or None if it is fine."""
    return KEY_REPLACEMENTS.get((transform_type, key))


def type_replacement(transform_type: str, *, train: bool) -> str | None:
    """The 3.x replacement for a 2.x-only transform type, or None if 3.x keeps it."""
    if train and transform_type in TRAIN_TYPE_REPLACEMENTS:
        return TRAIN_TYPE_REPLACEMENTS[transform_type]
    return TYPE_REPLACEMENTS.get(transform_type)


__all__ = [
    "KEY_REPLACEMENTS",
    "TRAIN_TYPE_REPLACEMENTS",
    "TYPE_REPLACEMENTS",
    "key_replacement",
    "type_replacement",
]

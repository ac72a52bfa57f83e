"""Transforms (TRANSFORMS registry) under MMDetection's names; importing this registers them."""

from __future__ import annotations

from detcli.data.transforms.compose import Compose
from detcli.data.transforms.formatting import (
    Collect,
    DefaultFormatBundle,
    ImageToTensor,
    PackDetInputs,
)
from detcli.data.transforms.geometric import Pad, RandomFlip, Resize, rescale_size
from detcli.data.transforms.loading import (
    BadImageError,
    LoadAnnotations,
    LoadImageFromFile,
    load_image,
)
from detcli.data.transforms.photometric import Normalize
from detcli.data.transforms.test_time import MultiScaleFlipAug

__all__ = [
    "BadImageError",
    "Collect",
    "Compose",
    "DefaultFormatBundle",
    "ImageToTensor",
    "LoadAnnotations",
    "LoadImageFromFile",
    "MultiScaleFlipAug",
    "Normalize",
    "PackDetInputs",
    "Pad",
    "RandomFlip",
    "Resize",
    "load_image",
    "rescale_size",
]

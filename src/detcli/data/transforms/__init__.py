"""Transforms (TRANSFORMS registry) under MMDetection's names; importing this registers them.

Both MMDetection 2.x and 3.x (mmcv 2.x) names and arguments are taken; the 2.x-only keys and
types a 3.x pipeline should not hold are listed in `detcli.data.transform_spellings`.
"""

from __future__ import annotations

from detcli.data.transforms.affine import RandomAffine
from detcli.data.transforms.compose import Compose
from detcli.data.transforms.crop import RandomCrop
from detcli.data.transforms.formatting import (
    Collect,
    DefaultFormatBundle,
    ImageToTensor,
    PackDetInputs,
)
from detcli.data.transforms.geometric import RandomFlip, Resize, rescale_size
from detcli.data.transforms.loading import (
    BadImageError,
    LoadAnnotations,
    LoadImageFromFile,
    load_image,
)
from detcli.data.transforms.mix import MixUp, Mosaic
from detcli.data.transforms.padding import Pad
from detcli.data.transforms.photometric import Normalize, PhotoMetricDistortion
from detcli.data.transforms.random_resize import RandomChoiceResize, RandomResize
from detcli.data.transforms.test_time import MultiScaleFlipAug, TestTimeAug

__all__ = [
    "BadImageError",
    "Collect",
    "Compose",
    "DefaultFormatBundle",
    "ImageToTensor",
    "LoadAnnotations",
    "LoadImageFromFile",
    "MixUp",
    "Mosaic",
    "MultiScaleFlipAug",
    "Normalize",
    "PackDetInputs",
    "Pad",
    "PhotoMetricDistortion",
    "RandomAffine",
    "RandomChoiceResize",
    "RandomCrop",
    "RandomFlip",
    "RandomResize",
    "Resize",
    "TestTimeAug",
    "load_image",
    "rescale_size",
]

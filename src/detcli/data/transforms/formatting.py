"""Formatting steps: results dict -> `Sample` (see detcli.structures) with tensors and metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS
from detcli.suggest import did_you_mean

META_KEYS = (
    "img_id",
    "filename",
    "ori_filename",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "img_norm_cfg",
)
GT_KEYS = ("gt_bboxes", "gt_labels", "gt_bboxes_ignore", "gt_masks")  # masks pass as they are
_GT_DTYPES = {
    "gt_bboxes": torch.float32,
    "gt_labels": torch.int64,
    "gt_bboxes_ignore": torch.float32,
}


def _image_tensor(img: Any) -> torch.Tensor:
    """A contiguous float32 (C, H, W) tensor from a tensor or an (H, W, C) array."""
    if isinstance(img, np.ndarray):
        img = torch.from_numpy(
            np.ascontiguousarray(img.transpose(2, 0, 1) if img.ndim == 3 else img[None])
        )
    tensor: torch.Tensor = img.to(torch.float32).contiguous()
    return tensor


def _gt_tensor(key: str, value: Any) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=_GT_DTYPES[key])
    return tensor.reshape(-1, 4) if key != "gt_labels" else tensor.reshape(-1)


def _fill_meta_defaults(results: Results) -> None:
    """Meta keys a pipeline without Resize/Pad/Normalize still needs to report."""
    shape = results.get("img_shape")
    if shape is not None:
        results.setdefault("pad_shape", shape)
    results.setdefault("scale_factor", np.ones(4, dtype=np.float32))
    results.setdefault("flip", False)
    results.setdefault("flip_direction", None)
    results.setdefault(
        "img_norm_cfg",
        {"mean": np.zeros(3, np.float32), "std": np.ones(3, np.float32), "to_rgb": False},
    )


@TRANSFORMS.register()
class DefaultFormatBundle:
    """Image to a float32 (C, H, W) tensor; boxes float32, labels int64 tensors."""

    def __init__(self, img_to_float: bool = True):
        self.img_to_float = img_to_float

    def __call__(self, results: Results) -> Results:
        if "img" in results:
            img = results["img"]
            results["img"] = _image_tensor(img) if self.img_to_float else torch.as_tensor(img)
        for key in _GT_DTYPES:  # gt_masks stay InstanceMasks
            if key in results:
                results[key] = _gt_tensor(key, results[key])
        _fill_meta_defaults(results)
        return results

    def __repr__(self) -> str:
        return f"DefaultFormatBundle(img_to_float={self.img_to_float})"


@TRANSFORMS.register()
class ImageToTensor:
    """Make the image keys float32 (C, H, W) tensors (arrays are transposed from H, W, C)."""

    def __init__(self, keys: Sequence[str] = ("img",)):
        self.keys = list(keys)

    def __call__(self, results: Results) -> Results:
        for key in self.keys:
            results[key] = _image_tensor(results[key])
        return results

    def __repr__(self) -> str:
        return f"ImageToTensor(keys={self.keys})"


@TRANSFORMS.register()
class Collect:
    """Keep `keys` (as tensors) and gather `meta_keys` into `img_metas`: the final `Sample`."""

    def __init__(self, keys: Sequence[str], meta_keys: Sequence[str] = META_KEYS):
        self.keys = list(keys)
        self.meta_keys = list(meta_keys)

    def __call__(self, results: Results) -> dict[str, Any]:
        missing = [k for k in self.keys if k not in results]
        if missing:
            raise DataError(
                f"Collect: {', '.join(missing)} not produced by the transforms before it "
                f"(available: {', '.join(sorted(k for k in results if not k.endswith('_info')))}). "
                f"Add the transform that makes it (e.g. LoadAnnotations) or drop it from keys."
            )
        _fill_meta_defaults(results)
        sample: dict[str, Any] = {
            "img_metas": {k: results[k] for k in self.meta_keys if k in results}
        }
        for key in self.keys:
            value = results[key]
            if key == "img":
                value = _image_tensor(value)
            elif key in _GT_DTYPES:
                value = _gt_tensor(key, value)
            sample[key] = value
        return sample

    def __repr__(self) -> str:
        return f"Collect(keys={self.keys})"


# MMDetection 3.x meta key names and the results key each reads in detcli.
META_KEYS_3X = {"img_path": "filename"}
# Keys mmdet 3.x records that detcli does not need: accepted in meta_keys, left out.
META_KEYS_IGNORED = ("homography_matrix",)
# Other results keys a pipeline step records and meta_keys may ask for.
META_KEYS_EXTRA = ("scale", "scale_idx", "keep_ratio", "pad_fixed_size", "pad_size_divisor")
PACK_DEFAULT_META = (
    "img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "flip", "flip_direction",
)  # fmt: skip


@TRANSFORMS.register()
class PackDetInputs:
    """The 3.x single formatting step: image, every ground-truth key present, and metadata.

    `meta_keys` takes MMDetection 3.x names (`img_path` is detcli's `filename`) and 2.x ones.
    What the model needs to map boxes back (img_id, filename, ori_shape, img_shape, pad_shape,
    scale_factor, flip, flip_direction, img_norm_cfg) is always recorded, even when a config's
    meta_keys leaves it out (mmdet 3.x test pipelines omit flip); `homography_matrix` is
    accepted and not recorded. An unknown key is a DataError.
    """

    def __init__(self, meta_keys: Sequence[str] = PACK_DEFAULT_META):
        known = (*META_KEYS, *META_KEYS_3X, *META_KEYS_IGNORED, *META_KEYS_EXTRA)
        unknown = [k for k in meta_keys if k not in known]
        if unknown:
            raise DataError(
                f"PackDetInputs: meta key {unknown[0]!r} is not recorded by any detcli "
                f"transform.{did_you_mean(str(unknown[0]), known)} Known meta keys: "
                f"{', '.join(known)}."
            )
        self.meta_keys = list(meta_keys)
        extra = [META_KEYS_3X.get(k, k) for k in meta_keys if k not in META_KEYS_IGNORED]
        self._collect_meta = list(dict.fromkeys([*META_KEYS, *extra]))

    def __call__(self, results: Results) -> dict[str, Any]:
        keys = ["img", *(k for k in GT_KEYS if k in results)]
        sample = Collect(keys, self._collect_meta)(results)
        if "img_path" in self.meta_keys and "filename" in sample["img_metas"]:
            sample["img_metas"]["img_path"] = sample["img_metas"]["filename"]
        return sample

    def __repr__(self) -> str:
        return f"PackDetInputs(meta_keys={tuple(self.meta_keys)})"

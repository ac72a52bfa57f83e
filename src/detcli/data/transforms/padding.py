"""Pad: grow the image at the bottom and right (boxes stay where they are), 2.x or 3.x spelling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

PaddingMode = Literal["constant", "edge", "reflect", "symmetric"]


def _fill(pad_val: Any) -> torch.Tensor:
    """The image fill of `pad_val` (a number, [c0, c1, c2], or mmcv's {img: ..., seg: ...})."""
    value = pad_val.get("img", 0) if isinstance(pad_val, dict) else pad_val
    fill = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    if fill.numel() not in (1, 3):
        raise DataError(
            f"Pad: pad_val must be a number or one value per channel (3), got {pad_val!r}."
        )
    return fill


@TRANSFORMS.register()
class Pad:
    """Pad bottom/right to a fixed `size`, a multiple of `size_divisor`, and/or a square.

    `size` is (h, w) in MMDetection 2.x and (w, h) in 3.x: a pipeline spelled the 3.x way
    (one with PackDetInputs or TestTimeAug) tells its Pads so (see Compose). `pad_val` is a
    number, one value per channel, or mmcv 2.x's `{img: ..., masks: ..., seg: ...}` (masks
    pad with `masks`, 0 by default; seg is unused). Instance masks grow with the image.
    `padding_mode` edge / reflect / symmetric copy border pixels as mmcv.impad does.
    The unpadded `img_shape` is kept (mmcv 2.x overwrites it) so boxes map back unchanged.
    """

    def __init__(
        self,
        size: Sequence[int] | None = None,
        size_divisor: int | None = None,
        pad_to_square: bool = False,
        pad_val: float | Sequence[float] | dict[str, Any] = 0,
        padding_mode: PaddingMode = "constant",
    ):
        if size is not None and (size_divisor is not None or pad_to_square):
            raise DataError(
                "Pad needs exactly one of size, size_divisor or pad_to_square (only "
                "size_divisor and pad_to_square go together, as in mmcv 2.x)."
            )
        if size is None and size_divisor is None and not pad_to_square:
            raise DataError("Pad needs exactly one of size, size_divisor or pad_to_square.")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise DataError(
                f"Pad: padding_mode {padding_mode!r} is not one of constant, edge, reflect, "
                f"symmetric."
            )
        self.size = tuple(int(v) for v in size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.fill = _fill(pad_val)
        # masks pad with pad_val's `masks` entry (mmdet's default 0): background
        self.mask_fill = int(pad_val.get("masks", 0)) if isinstance(pad_val, dict) else 0
        self.pad_val = pad_val
        self.padding_mode = padding_mode
        self.size_is_wh = False  # set by Compose for a 3.x pipeline

    def _padded_size(self, h: int, w: int) -> tuple[int, int]:
        if self.size is not None:
            sh, sw = self.size[::-1] if self.size_is_wh else self.size
            return max(h, sh), max(w, sw)
        ph, pw = (max(h, w),) * 2 if self.pad_to_square else (h, w)
        d = self.size_divisor or 1
        return -(-ph // d) * d, -(-pw // d) * d

    def __call__(self, results: Results) -> Results:
        img: torch.Tensor = results["img"]
        c, h, w = (int(s) for s in img.shape)
        ph, pw = self._padded_size(h, w)
        if (ph, pw) != (h, w):
            img = self._pad(img, ph, pw)
        for key in results.get("mask_fields", ()):
            if key in results:
                results[key] = results[key].pad((ph, pw), self.mask_fill)
        results.update(
            img=img,
            pad_shape=(ph, pw, c),
            pad_fixed_size=self.size,
            pad_size_divisor=self.size_divisor,
        )
        return results

    def _pad(self, img: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
        c, h, w = img.shape
        if self.padding_mode != "constant":
            # numpy's edge/reflect/symmetric are cv2's REPLICATE/REFLECT_101/REFLECT (mmcv.impad)
            padded = np.pad(img.numpy(), ((0, 0), (0, ph - h), (0, pw - w)), self.padding_mode)
            return torch.from_numpy(padded)
        out = img.new_empty((c, ph, pw))
        out[:] = self.fill.to(img.dtype).view(-1, 1, 1)
        out[:, :h, :w] = img
        return out

    def __repr__(self) -> str:
        return (
            f"Pad(size={self.size}, size_divisor={self.size_divisor}, "
            f"pad_to_square={self.pad_to_square}, pad_val={self.pad_val}, "
            f"padding_mode={self.padding_mode!r})"
        )

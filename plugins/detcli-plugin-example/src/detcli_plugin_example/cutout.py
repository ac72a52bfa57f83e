"""CutOut: fill random rectangles of the image, never hiding more of an object than allowed.

A transform is a callable on the pipeline's results dict: `results["img"]` is a (3, H, W)
tensor (uint8 until Normalize, float after), `results["gt_bboxes"]` an (N, 4) float xyxy
tensor in the same pixels, `results["gt_labels"]` an (N,) tensor. It returns the dict (or
None to reject the sample). CutOut moves no pixels, so the boxes stay where they are; what
it must respect is that a box whose object is painted over no longer shows that object,
which `max_box_occlusion` prevents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from detcli.errors import DataError

Results = dict[str, Any]


class CutOut:
    """MMDetection's CutOut (same keys), plus `max_box_occlusion` to keep objects visible.

    `n_holes`: a count, or [min, max] drawn per image. Hole sizes: `cutout_shape` (w, h)
    in pixels, or `cutout_ratio` (w, h) as fractions of the image; a list of either picks one
    per hole. `fill_in`: the value per channel (pixel units before Normalize). A hole is kept
    only while the holes kept so far cover at most `max_box_occlusion` of every box's area
    (1.0: no limit, as in mmdet).
    """

    def __init__(
        self,
        n_holes: int | Sequence[int],
        cutout_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
        cutout_ratio: Sequence[float] | Sequence[Sequence[float]] | None = None,
        fill_in: Sequence[float] = (0, 0, 0),
        max_box_occlusion: float = 1.0,
    ):
        if (cutout_shape is None) == (cutout_ratio is None):
            raise DataError("CutOut needs exactly one of cutout_shape and cutout_ratio.")
        holes = [n_holes, n_holes] if isinstance(n_holes, int) else list(n_holes)
        if len(holes) != 2 or not 0 <= holes[0] <= holes[1]:
            raise DataError(f"CutOut: n_holes must be a count or [min, max]; got {n_holes!r}.")
        if len(fill_in) != 3:
            raise DataError(f"CutOut: fill_in needs one value per channel; got {fill_in!r}.")
        if not 0.0 <= max_box_occlusion <= 1.0:
            raise DataError(
                f"CutOut: max_box_occlusion is a fraction of a box's area in [0, 1]; "
                f"got {max_box_occlusion}."
            )
        self.n_holes = (int(holes[0]), int(holes[1]))
        self.use_ratio = cutout_ratio is not None
        self.sizes = _pairs(cutout_ratio if self.use_ratio else cutout_shape)
        self.fill_in = torch.tensor([float(v) for v in fill_in])
        self.max_box_occlusion = max_box_occlusion

    def __call__(self, results: Results) -> Results:
        img: torch.Tensor = results["img"]
        h, w = int(img.shape[-2]), int(img.shape[-1])
        holes = self._sample_holes(h, w)
        boxes = results.get("gt_bboxes")
        if self.max_box_occlusion < 1.0 and boxes is not None and len(boxes) and len(holes):
            holes = holes[_keep_holes(holes, boxes.float(), self.max_box_occlusion)]
        if len(holes):
            ys = torch.arange(h).view(1, h, 1)
            xs = torch.arange(w).view(1, 1, w)
            x1, y1, x2, y2 = (holes[:, i].view(-1, 1, 1) for i in range(4))
            mask = ((xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)).any(0)
            fill = self.fill_in.to(img.dtype).view(-1, 1, 1)
            results["img"] = torch.where(mask, fill, img)  # a new tensor: the source may be shared
        results["cutout_holes"] = holes
        return results

    def _sample_holes(self, h: int, w: int) -> torch.Tensor:
        """(K, 4) integer xyxy holes: top-left uniform in the image, clipped at the far edges."""
        k = int(torch.randint(self.n_holes[0], self.n_holes[1] + 1, ()).item())
        pick = torch.randint(len(self.sizes), (k,))
        size = self.sizes[pick]
        if self.use_ratio:
            size = size * torch.tensor([w, h], dtype=torch.float32)
        size = size.round().long()
        x1 = torch.randint(0, w, (k,))
        y1 = torch.randint(0, h, (k,))
        x2 = (x1 + size[:, 0]).clamp(max=w)
        y2 = (y1 + size[:, 1]).clamp(max=h)
        return torch.stack((x1, y1, x2, y2), dim=1)

    def __repr__(self) -> str:
        kind = "cutout_ratio" if self.use_ratio else "cutout_shape"
        return (
            f"CutOut(n_holes={list(self.n_holes)}, {kind}={self.sizes.tolist()}, "
            f"fill_in={self.fill_in.tolist()}, max_box_occlusion={self.max_box_occlusion})"
        )


def _pairs(value: Any) -> torch.Tensor:
    """(S, 2) float (w, h) sizes from one [w, h] pair or a list of them."""
    pairs = [value] if len(value) == 2 and not isinstance(value[0], Sequence) else list(value)
    if not pairs or any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise DataError(
            f"CutOut: a hole size is [w, h] (or a list of [w, h]) of non-negative numbers; "
            f"got {value!r}."
        )
    return torch.tensor([[float(p[0]), float(p[1])] for p in pairs])


def _keep_holes(holes: torch.Tensor, boxes: torch.Tensor, limit: float) -> torch.Tensor:
    """Which holes to keep so the kept ones cover at most `limit` of every box.

    Coverage adds up each hole's overlap with each box, which counts twice where holes
    overlap: the bound is conservative, never lenient.
    """
    holes_f = holes.float()
    lt = torch.maximum(holes_f[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(holes_f[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)  # (K, N) overlap areas
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(-1).clamp(min=1e-6)
    share = inter / area
    keep = torch.zeros(len(holes), dtype=torch.bool)
    covered = torch.zeros(len(boxes))
    # Greedy in draw order: a loop over the few holes, each step vectorised over all boxes.
    for k in range(len(holes)):
        total = covered + share[k]
        if bool((total <= limit + 1e-6).all()):
            keep[k] = True
            covered = total
    return keep

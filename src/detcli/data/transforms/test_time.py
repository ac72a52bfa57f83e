"""Test-time augmentation -> `AugSample`: MultiScaleFlipAug (2.x) and TestTimeAug (mmcv 2.x)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from detcli.data.transforms.compose import Compose, Results, TransformFn
from detcli.data.transforms.geometric import Direction, _as_scales
from detcli.errors import DataError
from detcli.registry import TRANSFORMS, Transform


@TRANSFORMS.register()
class MultiScaleFlipAug:
    """Run the inner transforms once per scale and flip; with one scale and no flip, one view."""

    def __init__(
        self,
        transforms: list[Transform[TransformFn]],
        img_scale: Sequence[int] | Sequence[Sequence[int]] | None = None,
        flip: bool = False,
        flip_direction: Direction | Sequence[Direction] = "horizontal",
    ):
        self.transforms = Compose(transforms)
        self.img_scale = _as_scales(img_scale)
        if not self.img_scale:
            raise DataError("MultiScaleFlipAug needs img_scale: [w, h] or a list of them.")
        self.flip = flip
        self.flip_direction = (
            [flip_direction] if isinstance(flip_direction, str) else list(flip_direction)
        )

    def __call__(self, results: Results) -> dict[str, list[Any]]:
        flips: list[tuple[bool, str | None]] = [(False, None)]
        if self.flip:
            flips += [(True, d) for d in self.flip_direction]
        views = []
        for scale in self.img_scale:
            for flip, direction in flips:
                view = dict(results, scale=scale, flip=flip, flip_direction=direction)
                for fields in ("bbox_fields", "mask_fields"):
                    if fields in view:
                        view[fields] = list(view[fields])
                out = self.transforms(view)
                if out is None:
                    raise DataError("MultiScaleFlipAug: an inner transform rejected a test view.")
                views.append(out)
        return {key: [v[key] for v in views] for key in views[0]}

    def __repr__(self) -> str:
        return (
            f"MultiScaleFlipAug(img_scale={self.img_scale}, flip={self.flip}, "
            f"flip_direction={self.flip_direction}, transforms={self.transforms!r})"
        )


@TRANSFORMS.register()
class TestTimeAug:
    """One view per combination of the transform lists (their cartesian product, in order).

    `transforms: [[Resize a, Resize b], [RandomFlip prob 1, RandomFlip prob 0], [PackDetInputs]]`
    gives 4 views: (a, flip), (a, no flip), (b, flip), (b, no flip), as mmcv 2.x. Each
    combination must end in PackDetInputs; the views come out as one `AugSample` (every
    packed key as a list, one entry per view), the structure MultiScaleFlipAug produces.
    """

    def __init__(self, transforms: list[list[Transform[TransformFn]]]):
        if not transforms or not all(isinstance(g, (list, tuple)) and g for g in transforms):
            raise DataError(
                "TestTimeAug: transforms must be a list of non-empty lists of transforms, e.g. "
                "[[Resize ...], [RandomFlip prob 1.0, RandomFlip prob 0.0], [PackDetInputs]]."
            )
        self.subroutines = [
            Compose(list(combo), spelling="3.x") for combo in itertools.product(*transforms)
        ]

    def __call__(self, results: Results) -> dict[str, list[Any]]:
        views = []
        for subroutine in self.subroutines:
            view = dict(results)  # transforms replace tensors, never write into them
            for fields in ("bbox_fields", "mask_fields"):
                if fields in view:
                    view[fields] = list(view[fields])
            out = subroutine(view)
            if out is None:
                raise DataError("TestTimeAug: a transform rejected a test view (returned None).")
            if "img_metas" not in out:
                raise DataError(
                    "TestTimeAug: each combination of transforms must end with PackDetInputs "
                    "(put [PackDetInputs] as the last list)."
                )
            views.append(out)
        return {key: [v[key] for v in views] for key in views[0]}

    def __repr__(self) -> str:
        inner = "".join(f"\n    {s!r}," for s in self.subroutines)
        return f"TestTimeAug({inner}\n)"

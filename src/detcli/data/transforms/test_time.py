"""MultiScaleFlipAug: one view per (scale, flip) for test-time augmentation -> `AugSample`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detcli.data.transforms.compose import Compose, Results
from detcli.data.transforms.geometric import Direction, _as_scales
from detcli.errors import DataError
from detcli.registry import TRANSFORMS, TransformCfg


@TRANSFORMS.register()
class MultiScaleFlipAug:
    """Run the inner transforms once per scale and flip; with one scale and no flip, one view."""

    def __init__(
        self,
        transforms: list[TransformCfg],
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
                if "bbox_fields" in view:
                    view["bbox_fields"] = list(view["bbox_fields"])
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

"""RandomResize and RandomChoiceResize (mmcv 2.x): draw a scale, then resize with it.

Each wraps a resize transform (`resize_type`, default Resize) made with `resize_kwargs`
(keep_ratio, clip_object_border, interpolation, ...) and sets its `scale` before each call,
as mmcv 2.x does. The inner Resize is spelled the 3.x way, so keep_ratio defaults to false.

`resize_type` is a class, or the name of one of detcli's resizes (what a config writes): the
transform makes its own inner resize, so it is chosen here rather than built by a registry.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from detcli.data.transforms.compose import Results
from detcli.data.transforms.geometric import Resize
from detcli.errors import DataError
from detcli.registry import TRANSFORMS
from detcli.suggest import did_you_mean

Scale = tuple[int, int]


class ResizeStep(Protocol):
    """A resize whose target `scale` ([w, h]) can be set before each call."""

    scale: Any

    def __call__(self, results: Results) -> Results: ...


RESIZE_TYPES: dict[str, Callable[..., ResizeStep]] = {"Resize": Resize}


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _make_resize(
    owner: str, resize_type: str | Callable[..., ResizeStep], resize_kwargs: dict[str, Any]
) -> ResizeStep:
    """The wrapped resize transform, with a placeholder scale (set before every call)."""
    for key in ("scale", "img_scale"):
        if key in resize_kwargs:
            raise DataError(
                f"{owner}: `{key}` belongs to {owner} itself, not to its resize arguments; "
                f"remove it from there (the drawn scale is handed to {resize_type})."
            )
    if isinstance(resize_type, str):
        if resize_type not in RESIZE_TYPES:
            raise DataError(
                f"{owner}.resize_type: {resize_type!r} is not a resize transform of detcli's "
                f"({', '.join(RESIZE_TYPES)}).{did_you_mean(resize_type, RESIZE_TYPES)} "
                f"From Python, pass another resize class itself (resize_type=MyResize)."
            )
        resize_type = RESIZE_TYPES[resize_type]
    return resize_type(scale=0, **resize_kwargs)


@TRANSFORMS.register()
class RandomResize:
    """Resize to a random scale: between two [w, h] (each side drawn apart), or scale x ratio.

    `scale: [[w1, h1], [w2, h2]]` draws w in [w1, w2] and h in [h1, h2] (inclusive);
    `scale: [w, h]` with `ratio_range: [a, b]` draws r in [a, b) and uses (int(w r), int(h r)).
    """

    def __init__(
        self,
        scale: Sequence[int] | Sequence[Sequence[int]],
        ratio_range: Sequence[float] | None = None,
        resize_type: str | Callable[..., ResizeStep] = "Resize",
        **resize_kwargs: Any,
    ):
        if _is_pair(scale):
            if ratio_range is None or len(ratio_range) != 2 or ratio_range[0] > ratio_range[1]:
                raise DataError(
                    f"RandomResize: with one scale {list(scale)} give `ratio_range: [low, high]` "
                    f"(low <= high), or give two scales [[w1, h1], [w2, h2]] to draw between."
                )
        elif not (
            isinstance(scale, (list, tuple)) and len(scale) == 2 and all(map(_is_pair, scale))
        ):
            raise DataError(
                f"RandomResize: scale must be [w, h] (with ratio_range) or two [w, h] bounds; "
                f"got {scale!r}. For a choice among several scales use RandomChoiceResize."
            )
        self.scale = scale
        self.ratio_range = tuple(ratio_range) if ratio_range is not None else None
        self.resize = _make_resize("RandomResize", resize_type, dict(resize_kwargs))

    def _random_scale(self) -> Scale:
        scale: Any = self.scale
        if _is_pair(scale):
            low, high = self.ratio_range or (1.0, 1.0)
            ratio = random.random() * (high - low) + low
            return int(scale[0] * ratio), int(scale[1] * ratio)
        (w1, h1), (w2, h2) = scale
        return random.randint(min(w1, w2), max(w1, w2)), random.randint(min(h1, h2), max(h1, h2))

    def __call__(self, results: Results) -> Results:
        self.resize.scale = self._random_scale()
        return self.resize(results)

    def __repr__(self) -> str:
        return f"RandomResize(scale={self.scale}, ratio_range={self.ratio_range}, {self.resize!r})"


@TRANSFORMS.register()
class RandomChoiceResize:
    """Resize to one of `scales` ([w, h] each), chosen uniformly; records `scale_idx`."""

    def __init__(
        self,
        scales: Sequence[Sequence[int]] | Sequence[int],
        resize_type: str | Callable[..., ResizeStep] = "Resize",
        **resize_kwargs: Any,
    ):
        options = [scales] if _is_pair(scales) else list(scales)
        if not options or not all(_is_pair(s) for s in options):
            raise DataError(f"RandomChoiceResize: scales must be a list of [w, h]; got {scales!r}.")
        self.scales: list[Scale] = [(int(s[0]), int(s[1])) for s in options]  # type: ignore[index]
        self.resize = _make_resize("RandomChoiceResize", resize_type, dict(resize_kwargs))

    def __call__(self, results: Results) -> Results:
        idx = random.randrange(len(self.scales))
        self.resize.scale = self.scales[idx]
        results = self.resize(results)
        results["scale_idx"] = idx
        return results

    def __repr__(self) -> str:
        return f"RandomChoiceResize(scales={self.scales}, {self.resize!r})"

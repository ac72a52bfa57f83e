"""Compose: a pipeline of transforms built from config mappings, applied to a results dict."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detcli.registry import TRANSFORMS, TransformCfg

Results = dict[str, Any]
Transform = Callable[[Results], Any]


# Transform types only MMDetection 3.x pipelines hold: their presence says the pipeline's
# ambiguous keys (Pad's `size`: (h, w) in 2.x, (w, h) in 3.x) are meant the 3.x way.
TYPES_3X = ("PackDetInputs", "TestTimeAug")


class Compose:
    """Apply transforms in order; a transform returning None rejects the sample (None out)."""

    def __init__(self, transforms: Sequence[TransformCfg | Transform], spelling: str | None = None):
        self.transforms: list[Transform] = [
            TRANSFORMS.build(t) if isinstance(t, Mapping) else t for t in transforms
        ]
        if spelling is None:
            names = {type(t).__name__ for t in self.transforms}
            spelling = "3.x" if names.intersection(TYPES_3X) else "2.x"
        self.spelling = spelling
        if spelling == "3.x":
            for transform in self.transforms:
                if hasattr(transform, "size_is_wh"):
                    transform.size_is_wh = True

    def __call__(self, results: Results) -> Any:
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose({inner}\n)"

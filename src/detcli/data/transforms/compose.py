"""Compose: a pipeline of transforms built from config mappings, applied to a results dict."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detcli.registry import TRANSFORMS, TransformCfg

Results = dict[str, Any]
Transform = Callable[[Results], Any]


class Compose:
    """Apply transforms in order; a transform returning None rejects the sample (None out)."""

    def __init__(self, transforms: Sequence[TransformCfg | Transform]):
        self.transforms: list[Transform] = [
            TRANSFORMS.build(t) if isinstance(t, Mapping) else t for t in transforms
        ]

    def __call__(self, results: Results) -> Any:
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose({inner}\n)"

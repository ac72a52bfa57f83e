"""Compose: a pipeline of built transforms, applied to a results dict in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from detcli.errors import DataError

Results = dict[str, Any]
# A pipeline step: takes the results dict, returns it (changed) or None to reject the sample.
TransformFn = Callable[[Results], Any]


# Transform types only MMDetection 3.x pipelines hold: their presence says the pipeline's
# ambiguous keys (Pad's `size`: (h, w) in 2.x, (w, h) in 3.x) are meant the 3.x way.
TYPES_3X = ("PackDetInputs", "TestTimeAug")


class Compose:
    """Apply transforms in order; a transform returning None rejects the sample (None out).

    The transforms come built (a config's pipeline is built by `Registry.build`, or by
    `detcli.data.build_pipeline`). `spelling` ("2.x" or "3.x") decides how steps read their
    ambiguous keys; by default 3.x when a 3.x-only type is among them.
    """

    def __init__(self, transforms: Sequence[TransformFn], spelling: str | None = None):
        for i, transform in enumerate(transforms):
            if not callable(transform):
                raise DataError(
                    f"pipeline step {i} is {transform!r}, not a transform. In a config each step "
                    "needs a `type` to be built; from Python build the list with "
                    "detcli.data.build_pipeline([...]) or pass transform objects."
                )
        self.transforms: list[TransformFn] = list(transforms)
        if spelling is None:
            names = {type(t).__name__ for t in self.transforms}
            spelling = "3.x" if names.intersection(TYPES_3X) else "2.x"
        self.spelling = spelling
        if spelling == "3.x":
            for transform in self.transforms:
                if hasattr(transform, "size_is_wh"):
                    transform.size_is_wh = True

    def __call__(self, results: Results) -> Results | None:
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose({inner}\n)"

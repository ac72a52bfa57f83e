"""MultiImageMixDataset (MMDetection 3.x): a pipeline whose steps may combine several images."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch.utils.data import Dataset as _TorchDataset

from detcli.data.protocol import (
    BoolMatrix,
    ClassIndex,
    DetectionDataset,
    aspect_groups,
    checked_dataset,
    image_class_matrix,
)
from detcli.data.transforms.compose import Compose, Results, TransformFn
from detcli.errors import DataError
from detcli.registry import DATASETS, Dataset, Transform


@runtime_checkable
class _MixStep(Protocol):
    """A step that combines images (Mosaic, MixUp): it names the other images it needs."""

    def get_indexes(self, dataset: DetectionDataset) -> int | Sequence[int]: ...


@DATASETS.register()
class MultiImageMixDataset(ClassIndex, _TorchDataset):  # type: ignore[type-arg]
    """Run `pipeline` on the wrapped dataset's samples, feeding Mosaic/MixUp their other images.

    The wrapped dataset's own pipeline holds the loading steps (LoadImageFromFile,
    LoadAnnotations); `pipeline` holds the rest. Before a step that has `get_indexes(dataset)`
    the images it names are loaded through the wrapped dataset into `results['mix_results']`
    (tried up to `max_refetch` times while a load is rejected); a step returning None is retried
    up to `max_refetch` times. Steps whose type is in `skip_type_keys` are skipped (YOLOX turns
    Mosaic and MixUp off for the last epochs through `update_skip_type_keys`). `dynamic_scale`
    (MMDetection 2.x, [w, h]) is put in `results['scale']` for a later 2.x Resize.
    """

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self,
        dataset: Dataset[DetectionDataset],
        pipeline: list[Transform[TransformFn]],
        dynamic_scale: Sequence[int] | None = None,
        skip_type_keys: Sequence[str] | None = None,
        max_refetch: int = 15,
        lazy_init: bool = False,
    ):
        if max_refetch < 1:
            raise DataError(
                f"MultiImageMixDataset: max_refetch must be at least 1; got {max_refetch!r}."
            )
        if dynamic_scale is not None and len(dynamic_scale) != 2:
            raise DataError(
                f"MultiImageMixDataset: dynamic_scale is [w, h]; got {dynamic_scale!r}."
            )
        self.dataset = checked_dataset(dataset, "MultiImageMixDataset.dataset")
        self.pipeline = Compose(pipeline)
        # `skip_type_keys` names steps by type: a class's registered name (detcli's: its own).
        self.pipeline_types = [type(t).__name__ for t in self.pipeline.transforms]
        self.dynamic_scale = tuple(int(v) for v in dynamic_scale) if dynamic_scale else None
        self._skip_type_keys = self._checked_skip(skip_type_keys)
        self.max_refetch = int(max_refetch)
        self.CLASSES: tuple[str, ...] = tuple(self.dataset.CLASSES)
        self.flag = aspect_groups(self.dataset)

    @staticmethod
    def _checked_skip(skip_type_keys: Sequence[str] | None) -> list[str] | None:
        if skip_type_keys is None:
            return None
        if isinstance(skip_type_keys, str) or not all(isinstance(k, str) for k in skip_type_keys):
            raise DataError(
                f"MultiImageMixDataset: skip_type_keys is a list of transform types "
                f"(e.g. [Mosaic, MixUp]); got {skip_type_keys!r}."
            )
        return list(skip_type_keys)

    def update_skip_type_keys(self, skip_type_keys: Sequence[str] | None) -> None:
        """Skip the steps of these types from now on (None: skip none)."""
        self._skip_type_keys = self._checked_skip(skip_type_keys)

    def __len__(self) -> int:
        return len(self.dataset)

    def _fetch_mix(self, transform: _MixStep, kind: str) -> list[Results]:
        """The other images `transform` asks for, loaded through the wrapped dataset."""
        for _ in range(self.max_refetch):
            indexes = transform.get_indexes(self.dataset)
            if not isinstance(indexes, Sequence):
                indexes = [indexes]
            mixed = [copy.deepcopy(self.dataset[int(i)]) for i in indexes]
            if all(m is not None for m in mixed):
                return mixed
        raise DataError(
            f"MultiImageMixDataset: the wrapped dataset rejected every image {kind} asked for "
            f"({self.max_refetch} tries, max_refetch); check its loading pipeline."
        )

    def __getitem__(self, idx: int) -> Any:
        results = copy.deepcopy(self.dataset[idx])
        if self.dynamic_scale is not None:
            results["scale"] = self.dynamic_scale
        for transform, kind in zip(self.pipeline.transforms, self.pipeline_types, strict=True):
            if self._skip_type_keys is not None and kind in self._skip_type_keys:
                continue
            if isinstance(transform, _MixStep):
                results["mix_results"] = self._fetch_mix(transform, kind)
            for _ in range(self.max_refetch):
                # each try starts from the same input: a step may have changed it in place
                updated = transform(copy.deepcopy(results))
                if updated is not None:
                    results = updated
                    break
            else:
                raise DataError(
                    f"MultiImageMixDataset: pipeline step {kind} rejected the sample "
                    f"{self.max_refetch} times in a row (max_refetch); check its arguments."
                )
            results.pop("mix_results", None)
        return results

    def image_class_matrix(self) -> BoolMatrix:
        """The wrapped dataset's incidence matrix (each sample starts from its image)."""
        return image_class_matrix(self.dataset)

    def __repr__(self) -> str:
        return f"MultiImageMixDataset({self.dataset!r}, {len(self.pipeline.transforms)} steps)"


__all__ = ["MultiImageMixDataset"]

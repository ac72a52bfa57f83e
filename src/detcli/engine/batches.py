"""Small pieces between the loader and the model: device moves, loss parsing, skipping batches."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

import torch
from torch.utils.data import DataLoader, Sampler

from detcli.errors import ModelError
from detcli.structures import DetectionDataset, LossDict

B = TypeVar("B", bound=Mapping[str, Any])
T = TypeVar("T")


def to_device(batch: B, device: torch.device) -> B:
    """The batch with every tensor (also inside lists) on `device`; metadata left as is."""

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    # The same keys with values of the same types: still a `B` (a Batch stays a Batch).
    return cast(B, {k: (v if k == "img_metas" else move(v)) for k, v in batch.items()})


def dataset_of(loader: DataLoader[Any]) -> DetectionDataset:
    """The loader's dataset: detcli's loaders hold map-style detection datasets (sized, with
    CLASSES), which torch's `Dataset[T]` annotation does not say."""
    return cast(DetectionDataset, loader.dataset)


def parse_losses(losses: LossDict) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """(total loss, names, values): the total sums every key starting with `loss`; the values
    (each key's mean, then `loss`) come as one detached tensor, so reading them syncs once."""
    if not isinstance(losses, Mapping):
        raise ModelError(
            f"The model's training forward returned {type(losses).__name__}; it must return a "
            "dict of named scalar losses (model(**batch) -> {'loss_cls': ..., ...})."
        )
    names: list[str] = []
    values: list[torch.Tensor] = []
    total: list[torch.Tensor] = []
    for name, given in losses.items():
        value: object = given
        if isinstance(value, (list, tuple)):  # mmdet: per-level losses are summed
            value = sum(v.mean() for v in value)
        if isinstance(value, numbers.Real):  # models outside detcli may log plain numbers
            value = torch.as_tensor(float(value))
        if not isinstance(value, torch.Tensor):
            raise ModelError(
                f"The model's training forward returned {name!r} as a {type(value).__name__}; "
                "each value must be a tensor, a list of tensors (one per level) or a number."
            )
        value = value.mean()
        names.append(name)
        values.append(value.detach().float())
        if name.startswith("loss"):
            total.append(value)
    if not total:
        raise ModelError(
            f"The model returned no loss to train on: keys {', '.join(names) or '(none)'}; "
            "losses are the keys starting with 'loss'."
        )
    loss = torch.stack(total).sum() if len(total) > 1 else total[0]
    names.append("loss")
    values.append(loss.detach().float())
    return loss, names, torch.stack(values)


class _SkipFirst(Sampler[list[int]]):
    """A batch sampler without its first `n` batches (index lists only: no image is loaded)."""

    def __init__(self, batch_sampler: Iterable[list[int]], n: int):
        self.batch_sampler, self.n = batch_sampler, n

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.n, None)

    def __len__(self) -> int:
        # torch annotates a loader's batch sampler as any iterable; a BatchSampler is sized.
        return max(len(self.batch_sampler) - self.n, 0)  # type: ignore[arg-type]


def skip_batches(loader: DataLoader[T], n: int) -> DataLoader[T]:
    """A loader like `loader` that starts at batch `n` of the same epoch order (for resume)."""
    if loader.batch_sampler is None:  # batch_size=None: the loader yields single samples
        raise ValueError("skip_batches needs a loader that batches (it has no batch_sampler)")
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_sampler=_SkipFirst(loader.batch_sampler, n),
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers else None,
        persistent_workers=False,
    )

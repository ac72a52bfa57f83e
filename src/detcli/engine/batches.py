"""Small pieces between the loader and the model: device moves, loss parsing, skipping batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from detcli.errors import ModelError


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch with every tensor (also inside lists) on `device`; metadata left as is."""

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return {k: (v if k == "img_metas" else move(v)) for k, v in batch.items()}


def parse_losses(losses: Mapping[str, Any]) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """(total loss, names, values): the total sums every key starting with `loss`; the values
    (each key's mean, then `loss`) come as one detached tensor, so reading them syncs once."""
    if not isinstance(losses, Mapping):
        raise ModelError(
            f"The model's training forward returned {type(losses).__name__}; it must return a "
            "dict of named scalar losses (model(**batch) -> {'loss_cls': ..., ...})."
        )
    names, values, total = [], [], []
    for name, value in losses.items():
        if isinstance(value, (list, tuple)):  # mmdet: per-level losses are summed
            value = sum(v.mean() for v in value)
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(float(value))
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

    def __init__(self, batch_sampler: Any, n: int):
        self.batch_sampler, self.n = batch_sampler, n

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(iter(self.batch_sampler), self.n, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.n, 0)


def skip_batches(loader: DataLoader, n: int) -> DataLoader:  # type: ignore[type-arg]
    """A loader like `loader` that starts at batch `n` of the same epoch order (for resume)."""
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

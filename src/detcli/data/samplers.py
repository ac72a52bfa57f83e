"""Samplers: aspect-ratio groups, class-aware, infinite, and distributed shards with padding.

Every sampler is seeded by `seed` and re-seeded by `set_epoch(epoch)`: all ranks draw the same
permutation for an epoch and each takes its own share, so shards never overlap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Sampler

from detcli.data.protocol import DetectionDataset, aspect_groups, image_class_matrix
from detcli.errors import DataError

T = TypeVar("T")


def _generator(seed: int, epoch: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    return g


def _check_rank(num_replicas: int, rank: int) -> None:
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise DataError(f"Sampler: rank {rank} is not in [0, {num_replicas}).")


def grouped_batches(flags: np.ndarray, batch_size: int, g: torch.Generator) -> np.ndarray:
    """One shuffled epoch as (num_batches, batch_size) indices; each batch from one group.

    Each group is shuffled and padded with its own images to whole batches, then the batches
    are shuffled: images of one aspect ratio share a batch, so padding wastes little.
    """
    batches = []
    for group in np.unique(flags):
        members = np.flatnonzero(flags == group)
        members = members[torch.randperm(members.size, generator=g).numpy()]
        extra = -members.size % batch_size
        if extra:
            members = np.concatenate([members, members[np.resize(np.arange(members.size), extra)]])
        batches.append(members.reshape(-1, batch_size))
    if not batches:
        return np.zeros((0, batch_size), np.int64)
    stacked = np.concatenate(batches)
    shuffled: np.ndarray = stacked[torch.randperm(len(stacked), generator=g).numpy()]
    return shuffled


class _Seeded(Sampler[int]):
    def __init__(self, seed: int | None):
        self.seed = 0 if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Re-seed for `epoch` (the runner calls it at the start of every epoch)."""
        self.epoch = epoch


class GroupSampler(_Seeded):
    """Shuffled training order; each run of `samples_per_gpu` shares an aspect group.

    `group=False` shuffles without grouping (mmengine's DefaultSampler without
    AspectRatioBatchSampler).
    """

    def __init__(
        self,
        dataset: DetectionDataset,
        samples_per_gpu: int = 1,
        seed: int | None = None,
        group: bool = True,
    ):
        super().__init__(seed)
        self.flags = aspect_groups(dataset, group)
        self.samples_per_gpu = samples_per_gpu
        self.num_samples = sum(
            -(-int(n) // samples_per_gpu) * samples_per_gpu for n in np.bincount(self.flags) if n
        )

    def __iter__(self) -> Iterator[int]:
        batches = grouped_batches(
            self.flags, self.samples_per_gpu, _generator(self.seed, self.epoch)
        )
        return iter(batches.reshape(-1).tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedGroupSampler(_Seeded):
    """Grouped training order split across ranks: rank r takes every world-th whole batch."""

    def __init__(
        self,
        dataset: DetectionDataset,
        samples_per_gpu: int = 1,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int | None = None,
        group: bool = True,
    ):
        super().__init__(seed)
        _check_rank(num_replicas, rank)
        self.flags = aspect_groups(dataset, group)
        self.samples_per_gpu = samples_per_gpu
        self.num_replicas, self.rank = num_replicas, rank
        per_rank = samples_per_gpu * num_replicas
        total = sum(-(-int(n) // per_rank) * per_rank for n in np.bincount(self.flags) if n)
        self.num_samples = total // num_replicas

    def __iter__(self) -> Iterator[int]:
        g = _generator(self.seed, self.epoch)
        per_rank = self.samples_per_gpu * self.num_replicas
        # Pad each group to whole rounds (one batch per rank), then deal batches round-robin.
        batches = grouped_batches(self.flags, per_rank, g).reshape(-1, self.samples_per_gpu)
        return iter(batches[self.rank :: self.num_replicas].reshape(-1).tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedEvalSampler(Sampler[int]):
    """Val/test shards in dataset order: rank r gets a contiguous block; the last one is padded.

    Every rank gets `num_samples` indices (collectives need equal counts). The padding repeats
    the first images; `unshard` drops it, as does keeping only the first `len(dataset)` results.
    """

    def __init__(self, dataset: DetectionDataset, num_replicas: int = 1, rank: int = 0):
        _check_rank(num_replicas, rank)
        self.dataset_len = len(dataset)
        self.num_replicas, self.rank = num_replicas, rank
        self.num_samples = -(-self.dataset_len // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def indices(self) -> list[int]:
        """This rank's indices, padding included."""
        start = self.rank * self.num_samples
        return [i % max(self.dataset_len, 1) for i in range(start, start + self.num_samples)]

    def padding_mask(self) -> list[bool]:
        """True at the positions of this rank's shard that are padding duplicates."""
        start = self.rank * self.num_samples
        return [i >= self.dataset_len for i in range(start, start + self.num_samples)]

    def set_epoch(self, epoch: int) -> None:
        """Evaluation order does not change with the epoch."""

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices() if self.dataset_len else [])

    def __len__(self) -> int:
        return self.num_samples if self.dataset_len else 0


def unshard(parts: Sequence[Sequence[T]], dataset_len: int) -> list[T]:
    """Per-rank results of DistributedEvalSampler shards -> dataset order, padding dropped."""
    return [item for part in parts for item in part][:dataset_len]


class InfiniteGroupBatchSampler(Sampler[list[int]]):
    """Endless batches for iteration-based runs: a new shuffle per pass, one group per batch."""

    def __init__(
        self,
        dataset: DetectionDataset,
        batch_size: int = 1,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int | None = None,
        shuffle: bool = True,
        group: bool = True,
    ):
        _check_rank(num_replicas, rank)
        self.flags = aspect_groups(dataset, group)
        self.size = len(dataset)
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.seed = 0 if seed is None else int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Start the endless stream from the permutation of pass `epoch`."""
        self.epoch = epoch

    def _stream(self) -> Iterator[int]:
        """All ranks' indices: one permutation per pass, passes one after another."""
        epoch = self.epoch
        while True:
            if self.shuffle:
                yield from torch.randperm(
                    self.size, generator=_generator(self.seed, epoch)
                ).tolist()
            else:
                yield from range(self.size)
            epoch += 1

    def __iter__(self) -> Iterator[list[int]]:
        if self.size == 0:
            return
        buckets: dict[int, list[int]] = {}
        for position, idx in enumerate(self._stream()):
            if position % self.num_replicas != self.rank:
                continue
            bucket = buckets.setdefault(int(self.flags[idx]), [])
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()

    def __len__(self) -> int:
        # Iteration-based runs stop by count; this is one pass's worth of batches per rank.
        return max(1, -(-self.size // (self.batch_size * self.num_replicas)))


class ClassAwareSampler(_Seeded):
    """Pick a class uniformly, then `num_sample_class` images holding it (rare classes too).

    One epoch draws as many samples as the dataset has images (per rank: its share).
    """

    def __init__(
        self,
        dataset: DetectionDataset,
        samples_per_gpu: int = 1,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int | None = None,
        num_sample_class: int = 1,
    ):
        super().__init__(seed)
        _check_rank(num_replicas, rank)
        matrix = image_class_matrix(dataset)
        self.images_of = [np.flatnonzero(matrix[:, c]) for c in range(matrix.shape[1])]
        self.classes = np.array([c for c, imgs in enumerate(self.images_of) if imgs.size], np.int64)
        if not self.classes.size:
            raise DataError("ClassAwareSampler: no class has any image; nothing to sample.")
        self.num_sample_class = max(1, int(num_sample_class))
        self.num_replicas, self.rank = num_replicas, rank
        per_round = samples_per_gpu * num_replicas
        self.total_size = -(-len(dataset) // per_round) * per_round
        self.num_samples = self.total_size // num_replicas

    def __iter__(self) -> Iterator[int]:
        g = _generator(self.seed, self.epoch)
        rounds = -(-self.total_size // self.num_sample_class)
        picks = self.classes[torch.randint(len(self.classes), (rounds,), generator=g).numpy()]
        indices = np.empty((rounds, self.num_sample_class), np.int64)
        # Per class, draw all its picks at once (a loop over classes, not over samples).
        rand = torch.rand((rounds, self.num_sample_class), generator=g).numpy()
        for c in np.unique(picks):
            rows = picks == c
            pool = self.images_of[c]
            indices[rows] = pool[(rand[rows] * pool.size).astype(np.int64).clip(max=pool.size - 1)]
        flat = indices.reshape(-1)[: self.total_size]
        return iter(flat[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

"""Samplers: aspect groups, class-aware, infinite, distributed shards with per-epoch seeds."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from detcli.data.samplers import (
    ClassAwareSampler,
    DistributedEvalSampler,
    DistributedGroupSampler,
    GroupSampler,
    InfiniteGroupBatchSampler,
    unshard,
)
from detcli.errors import DataError


class Fake:
    """Just what samplers read: a length, aspect flags and which classes each image holds."""

    def __init__(self, flags, matrix=None):
        self.flag = np.asarray(flags, np.uint8)
        self.matrix = matrix

    def __len__(self):
        return len(self.flag)

    def image_class_matrix(self):
        return self.matrix


FLAGS = [0] * 7 + [1] * 5


def batches(indices, size):
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def test_group_sampler_batches_share_an_aspect_group_and_cover_everything():
    sampler = GroupSampler(Fake(FLAGS), samples_per_gpu=4, seed=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 8 + 8  # each group padded to whole batches
    assert set(order) == set(range(12))
    for b in batches(order, 4):
        assert len({FLAGS[i] for i in b}) == 1
    assert list(sampler) == order  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != order
    again = GroupSampler(Fake(FLAGS), samples_per_gpu=4, seed=3)
    again.set_epoch(1)
    assert list(again) == list(sampler)  # an epoch's order depends on seed and epoch only


def test_distributed_group_shards_are_disjoint_whole_batches():
    shards = []
    for rank in range(2):
        s = DistributedGroupSampler(
            Fake(FLAGS), samples_per_gpu=2, num_replicas=2, rank=rank, seed=1
        )
        s.set_epoch(4)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
        for b in batches(shards[-1], 2):
            assert len({FLAGS[i] for i in b}) == 1
    assert len(shards[0]) == len(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(12))
    # groups are padded to whole rounds of 2 ranks x 2 images: 7 -> 8 and 5 -> 8
    both = Counter(shards[0] + shards[1])
    assert sum(n - 1 for n in both.values()) == 4
    s0 = DistributedGroupSampler(Fake(FLAGS), 2, 2, 0, seed=1)
    s0.set_epoch(5)
    assert list(s0) != shards[0]


def test_distributed_eval_sampler_pads_and_unshards_in_dataset_order():
    results = []
    for rank in range(4):
        s = DistributedEvalSampler(Fake([0] * 10), num_replicas=4, rank=rank)
        assert len(s) == 3
        results.append(list(s))
        assert s.padding_mask() == [r * 3 + k >= 10 for r in [rank] for k in range(3)]
    assert results == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 1]]
    assert unshard(results, 10) == list(range(10))


def test_infinite_sampler_runs_past_one_epoch_and_splits_ranks():
    per_rank = []
    for rank in range(2):
        s = InfiniteGroupBatchSampler(Fake(FLAGS), batch_size=2, num_replicas=2, rank=rank, seed=0)
        got = list(itertools.islice(iter(s), 15))  # 30 samples from 12 images
        for b in got:
            assert len(b) == 2 and len({FLAGS[i] for i in b}) == 1
        per_rank.append(got)
    seen = Counter(i for got in per_rank for b in got for i in b)
    assert set(seen) == set(range(12)) and max(seen.values()) >= 2
    first = [i for b in per_rank[0][:2] for i in b]
    s = InfiniteGroupBatchSampler(Fake(FLAGS), batch_size=2, num_replicas=2, rank=0, seed=0)
    s.set_epoch(3)
    assert [i for b in itertools.islice(iter(s), 2) for i in b] != first


def test_class_aware_sampler_sees_rare_classes_as_often_as_common_ones():
    matrix = np.zeros((100, 3), bool)
    matrix[:, 0] = True  # class 0 on every image
    matrix[:10, 1] = True  # class 1 on 10 images
    matrix[99, 2] = True  # class 2 on one image
    s = ClassAwareSampler(Fake([0] * 100, matrix), samples_per_gpu=2, seed=0)
    draws = []
    for epoch in range(5):
        s.set_epoch(epoch)
        draws += list(s)
    assert len(draws) == 500
    counts = Counter(draws)
    assert 80 < counts[99] < 250  # about a third of the draws pick the one-image class
    assert sum(counts[i] for i in range(10)) > 150
    shards = [list(ClassAwareSampler(Fake([0] * 100, matrix), 2, 2, r, seed=0)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 50


def test_bad_rank_is_refused():
    with pytest.raises(DataError, match="rank 2"):
        DistributedEvalSampler(Fake([0, 0, 0]), num_replicas=2, rank=2)

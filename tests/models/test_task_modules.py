"""Anchors, box coding, assignment and sampling: each config number changes what they produce."""

from __future__ import annotations

import pytest
import torch
from model_helpers import boxes

from detcli.errors import ModelError
from detcli.models.task_modules import (
    AnchorGenerator,
    DeltaXYWHBBoxCoder,
    MaxIoUAssigner,
    RandomSampler,
    bbox_overlaps,
)


def test_anchor_ratios_and_scales_set_the_anchor_count_and_shapes():
    three = AnchorGenerator(strides=[4, 8], ratios=[0.5, 1.0, 2.0], scales=[8])
    one = AnchorGenerator(strides=[4, 8], ratios=[1.0], scales=[8])
    six = AnchorGenerator(strides=[4, 8], ratios=[0.5, 1.0, 2.0], scales=[4, 8])
    sizes = [(16, 16), (8, 8)]
    assert [three.num_base_anchors, one.num_base_anchors, six.num_base_anchors] == [3, 1, 6]
    assert [a.shape[0] for a in three.grid_anchors(sizes)] == [16 * 16 * 3, 8 * 8 * 3]
    assert [a.shape[0] for a in one.grid_anchors(sizes)] == [16 * 16, 8 * 8]
    # scale 8 x stride 4: a 32 px square centred on the first cell's corner
    assert one.grid_anchors(sizes)[0][0].tolist() == [-16.0, -16.0, 16.0, 16.0]
    wh = three.base_anchors[0][:, 2:] - three.base_anchors[0][:, :2]
    assert torch.allclose(wh[:, 1] / wh[:, 0], torch.tensor([0.5, 1.0, 2.0]))  # h / w = ratio
    assert torch.allclose(wh.prod(1), torch.full((3,), 32.0 * 32.0))  # same area for every ratio


def test_anchor_strides_and_base_sizes():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], scales=[2], base_sizes=[10])
    a = gen.grid_anchors([(2, 3)])[0]
    assert a[:, 2:].sub(a[:, :2]).unique().tolist() == [20.0]  # base size 10 x scale 2
    assert a[1, 0] - a[0, 0] == 8 and a[3, 1] - a[0, 1] == 8  # next column, next row
    octave = AnchorGenerator(strides=[8], ratios=[1.0], octave_base_scale=4, scales_per_octave=2)
    assert octave.num_base_anchors == 2
    with pytest.raises(ModelError, match="strides"):
        gen.grid_anchors([(2, 2), (1, 1)])


def test_valid_flags_drop_cells_in_batch_padding():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], scales=[1])
    flags = gen.valid_flags([(4, 4)], torch.tensor([[32.0, 32.0], [16.0, 32.0]]))[0]
    assert flags[0].all()
    assert flags[1].reshape(4, 4)[:2].all() and not flags[1].reshape(4, 4)[2:].any()


def test_coder_round_trip_and_stds_scale_the_targets():
    ref = boxes([[10, 10, 50, 30], [0, 0, 8, 8]])
    gt = boxes([[12, 8, 60, 34], [1, 1, 9, 10]])
    unit = DeltaXYWHBBoxCoder()
    tight = DeltaXYWHBBoxCoder(target_stds=[0.1, 0.1, 0.2, 0.2])
    shifted = DeltaXYWHBBoxCoder(target_means=[0.5, 0.0, 0.0, 0.0])
    d = unit.encode(ref, gt)
    assert torch.allclose(tight.encode(ref, gt), d / torch.tensor([0.1, 0.1, 0.2, 0.2]))
    assert torch.allclose(shifted.encode(ref, gt)[:, 0], d[:, 0] - 0.5)
    for coder in (unit, tight, shifted):
        assert torch.allclose(coder.decode(ref, coder.encode(ref, gt)), gt, atol=1e-4)


def test_coder_clips_to_the_image_and_limits_growth():
    coder = DeltaXYWHBBoxCoder()
    ref = boxes([[90, 90, 110, 110]])
    out = coder.decode(ref, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), max_shape=(100, 120))
    assert out[0].tolist()[2:] == [120.0, 100.0]  # x clipped to w=120, y to h=100
    free = DeltaXYWHBBoxCoder(clip_border=False).decode(
        ref, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), max_shape=(100, 120)
    )
    assert free[0, 2] > 120
    huge = coder.decode(ref, torch.tensor([[0.0, 0.0, 50.0, 50.0]]))
    assert huge[0, 2] - huge[0, 0] == pytest.approx(20 * 1000 / 16, rel=1e-3)  # wh_ratio_clip


def test_class_specific_decode_keeps_one_box_per_class():
    coder = DeltaXYWHBBoxCoder()
    ref = boxes([[0, 0, 10, 10]])
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0]])
    out = coder.decode(ref, deltas).reshape(1, 2, 4)
    assert out[0, 0].tolist() == [0, 0, 10, 10] and out[0, 1, 0] == pytest.approx(1.0)


GT = boxes([[0, 0, 10, 10], [20, 20, 40, 40]])
CANDIDATES = boxes(
    [
        [0, 0, 10, 10],  # IoU 1 with GT 0
        [0, 0, 10, 8],  # IoU 0.8 with GT 0
        [0, 0, 10, 5],  # IoU 0.5 with GT 0
        [0, 0, 10, 2],  # IoU 0.2 with GT 0
        [60, 60, 70, 70],  # IoU 0
        [20, 20, 30, 40],  # IoU 0.5 with GT 1 (GT 1's best)
    ]
)


def test_assigner_thresholds():
    a = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, match_low_quality=False)
    r = a.assign(CANDIDATES, GT, torch.tensor([3, 5]))
    assert r.gt_inds.tolist() == [1, 1, -1, 0, 0, -1]  # 0.5 is neither pos nor neg: ignored
    assert r.labels.tolist() == [3, 3, -1, -1, -1, -1]
    lower = MaxIoUAssigner(pos_iou_thr=0.45, neg_iou_thr=0.3, match_low_quality=False)
    assert lower.assign(CANDIDATES, GT).gt_inds.tolist() == [1, 1, 1, 0, 0, 2]


def test_negative_range_excludes_background_without_overlap():
    a = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=(0.1, 0.3), match_low_quality=False)
    assert a.assign(CANDIDATES, GT).gt_inds.tolist() == [1, 1, -1, 0, -1, -1]


def test_low_quality_matches_respect_min_pos_iou():
    strict = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, match_low_quality=False)
    assert strict.assign(CANDIDATES, GT).gt_inds[5] == -1
    low = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True)
    assert low.assign(CANDIDATES, GT).gt_inds[5] == 2  # GT 1's best candidate, IoU 0.5
    high = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.6, match_low_quality=True)
    assert high.assign(CANDIDATES, GT).gt_inds[5] == -1


def test_gt_max_assign_all_gives_every_tied_best_candidate():
    gt = boxes([[0, 0, 10, 10]])
    cands = boxes([[0, 0, 10, 5], [0, 5, 10, 10], [0, 0, 10, 2]])  # two tie at IoU 0.5
    kw = dict(pos_iou_thr=0.9, neg_iou_thr=0.1, min_pos_iou=0.1)
    assert MaxIoUAssigner(**kw, gt_max_assign_all=True).assign(cands, gt).gt_inds.tolist() == [
        1,
        1,
        -1,
    ]
    one = MaxIoUAssigner(**kw, gt_max_assign_all=False).assign(cands, gt).gt_inds.tolist()
    assert sorted(one) == [-1, -1, 1]


def test_ignore_iof_thr_ignores_candidates_inside_crowd_regions():
    crowd = boxes([[55, 55, 80, 80]])
    without = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, ignore_iof_thr=-1)
    with_ = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, ignore_iof_thr=0.5)
    assert without.assign(CANDIDATES, GT, gt_bboxes_ignore=crowd).gt_inds[4] == 0
    assert with_.assign(CANDIDATES, GT, gt_bboxes_ignore=crowd).gt_inds[4] == -1
    assert (
        with_.assign(CANDIDATES, GT, gt_bboxes_ignore=crowd).gt_inds[3] == 0
    )  # elsewhere: unchanged


def test_no_gt_makes_everything_background():
    r = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3).assign(CANDIDATES, boxes([]))
    assert r.gt_inds.tolist() == [0] * 6


def test_overlaps_iou_and_iof():
    a = boxes([[0, 0, 10, 10]])
    b = boxes([[0, 0, 5, 10], [0, 0, 0, 0]])
    assert bbox_overlaps(a, b).tolist() == [[0.5, 0.0]]
    assert bbox_overlaps(b, a, mode="iof").tolist() == [[1.0], [0.0]]


def _assigned(num_pos: int, num_neg: int) -> tuple:
    a = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5, match_low_quality=False)
    gt = boxes([[0, 0, 10, 10]])
    cands = torch.cat([gt.repeat(num_pos, 1), boxes([[50, 50, 60, 60]]).repeat(num_neg, 1)])
    return a.assign(cands, gt, torch.tensor([2])), cands, gt


def test_sampler_num_and_pos_fraction():
    r, cands, gt = _assigned(100, 300)
    s = RandomSampler(num=64, pos_fraction=0.25, add_gt_as_proposals=False).sample(
        r, cands, gt, torch.tensor([2])
    )
    assert s.pos_inds.numel() == 16 and s.neg_inds.numel() == 48
    assert (s.pos_inds < 100).all() and (s.neg_inds >= 100).all()
    assert s.pos_gt_labels.unique().tolist() == [2]
    r, cands, gt = _assigned(3, 300)
    s = RandomSampler(num=64, pos_fraction=0.25, add_gt_as_proposals=False).sample(r, cands, gt)
    assert s.pos_inds.numel() == 3 and s.neg_inds.numel() == 61  # negatives fill up


def test_sampler_neg_pos_ub_and_gt_as_proposals():
    r, cands, gt = _assigned(3, 300)
    s = RandomSampler(num=64, pos_fraction=0.25, neg_pos_ub=2, add_gt_as_proposals=False).sample(
        r, cands, gt
    )
    assert s.neg_inds.numel() == 6
    r, cands, gt = _assigned(0, 300)
    s = RandomSampler(num=64, pos_fraction=0.25, add_gt_as_proposals=True).sample(
        r, cands, gt, torch.tensor([2])
    )
    assert s.pos_inds.tolist() == [0] and s.pos_is_gt.tolist() == [True]
    assert torch.equal(s.pos_bboxes, gt) and s.pos_gt_labels.tolist() == [2]


def test_batched_assignment_equals_assigning_each_image():
    """One padded call for the batch (mixed GT counts, an image without GT, crowd regions)."""
    from detcli.models.task_modules.padding import pad_boxes, pad_labels

    torch.manual_seed(0)
    xy = torch.rand(2, 40, 2) * 80
    cands = torch.cat([xy, xy + 10 + torch.rand(2, 40, 2) * 40], 2)
    gts = [boxes([[0, 0, 40, 40], [50, 50, 100, 90], [10, 60, 50, 110]]), boxes([])]
    labels = [torch.tensor([4, 1, 2]), torch.zeros(0, dtype=torch.long)]
    crowd = [boxes([[60, 0, 120, 40]]), boxes([[0, 0, 30, 30]])]
    valid = torch.ones(2, 40, dtype=torch.bool)
    valid[0, 30:] = False  # padding candidates of image 0
    gt, gt_valid = pad_boxes(gts)
    ignore, ignore_valid = pad_boxes(crowd)
    for kw in ({}, {"gt_max_assign_all": False}, {"ignore_iof_thr": 0.5}):
        a = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.1, **kw)
        batch = a.assign_batch(cands, valid, gt, gt_valid, pad_labels(labels), ignore, ignore_valid)
        assert (batch.gt_inds[0, 30:] == -1).all()
        for i, n in enumerate([30, 40]):
            one = a.assign(cands[i, :n], gts[i], labels[i], crowd[i])
            assert torch.equal(batch.gt_inds[i, :n], one.gt_inds)
            assert torch.equal(batch.labels[i, :n], one.labels)
        assert (batch.gt_inds[1] == 0).all()  # no GT: all background, crowd or not
    assert (batch.gt_inds[0] > 0).any() and (batch.gt_inds[0] == -1).any()


def test_batched_sampling_keeps_counts_per_image_and_draws_uniformly():
    sampler = RandomSampler(num=8, pos_fraction=0.5)
    gt_inds = torch.tensor([[1] * 6 + [0] * 10 + [-1] * 4, [2] * 2 + [0] * 3 + [-1] * 15])
    hits = torch.zeros(6)
    for _ in range(300):
        s = sampler.sample_batch(gt_inds)
        picked = [s.inds[i][s.valid[i]] for i in range(2)]
        assert [len(p.unique()) for p in picked] == [8, 5]  # without replacement
        assert s.is_pos.sum(1).tolist() == [4, 2]  # positives capped, then negatives fill
        for i in range(2):
            assert (gt_inds[i, picked[i]] >= 0).all()  # never an ignored candidate
            assert (gt_inds[i, s.inds[i][s.is_pos[i]]] > 0).all()
        hits[s.inds[0][s.is_pos[0]]] += 1
    assert (hits / 300 - 4 / 6).abs().max() < 0.12  # each positive kept 4 times in 6
    capped = RandomSampler(num=8, pos_fraction=0.5, neg_pos_ub=1.0).sample_batch(gt_inds)
    assert capped.valid.sum(1).tolist() == [8, 4]  # negatives at most 1 per positive


def test_nms_per_image_keeps_groups_and_images_apart():
    from torchvision.ops import batched_nms

    from detcli.models.task_modules.nms import nms_per_image

    torch.manual_seed(0)
    xy = torch.rand(2, 300, 2) * 100
    boxes_ = torch.cat([xy, xy + 5 + torch.rand(2, 300, 2) * 30], 2)
    scores = torch.rand(2, 300)
    groups = torch.randint(0, 4, (2, 300))
    # the reference: one batched_nms per image, image-major indices
    expected = torch.cat(
        [batched_nms(boxes_[i], scores[i], groups[i], 0.5) + 300 * i for i in range(2)]
    )
    for offsets in (True, False):  # the GPU form (shifted groups) and the CPU form
        kept = nms_per_image(
            boxes_.reshape(-1, 4), scores.reshape(-1), groups.reshape(-1), 2, 0.5, offsets
        )
        assert torch.equal(kept, expected)
    assert len(expected) < 600 and (expected[:-1] // 300 <= expected[1:] // 300).all()

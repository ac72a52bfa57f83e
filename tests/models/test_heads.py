"""RPN and RoI heads: anchors, proposal settings, RoI pooling and box-head options take effect."""

from __future__ import annotations

import pytest
import torch
from model_helpers import boxes, tiny_cfg

import detcli.models  # noqa: F401  (registers the parts)
from detcli.errors import ModelError
from detcli.model_config import build_model, stage_train_cfg
from detcli.models.dense_heads.anchor_targets import anchor_targets
from detcli.models.run_cfgs import NmsCfg, ProposalCfg, read_cfg
from detcli.models.task_modules import bbox_overlaps
from detcli.registry import MODELS


def rpn_head(**changes):
    cfg = tiny_cfg()
    head = {
        **cfg["rpn_head"],
        "train_cfg": stage_train_cfg(cfg["train_cfg"]["rpn"], "rpn"),
        "test_cfg": read_cfg(ProposalCfg, cfg["test_cfg"]["rpn"], "rpn"),
    }
    head.update(changes)
    return MODELS.build(head)


def pyramid(batch: int = 2, channels: int = 64, size: int = 128) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(batch, channels, size // s, size // s) for s in (4, 8, 16, 32, 64)]


def test_anchor_ratios_change_the_rpn_outputs():
    three = rpn_head()
    one = rpn_head(
        anchor_generator={
            "type": "AnchorGenerator",
            "scales": [4],
            "ratios": [1.0],
            "strides": [4, 8, 16, 32, 64],
        }
    )
    scores, deltas = one(pyramid())
    assert three.rpn_cls.out_channels == 3 and one.rpn_cls.out_channels == 1
    assert scores[0].shape[1] == 1 and deltas[0].shape[1] == 4
    softmax = rpn_head(loss_cls={"type": "CrossEntropyLoss", "use_sigmoid": False})
    assert softmax.rpn_cls.out_channels == 6  # background + object score per anchor


def test_proposal_settings_bound_the_proposals():
    head = rpn_head()
    scores, deltas = head(pyramid())
    hw = torch.tensor([[128.0, 128.0], [96.0, 128.0]])
    wide = head.proposals(
        scores,
        deltas,
        hw,
        ProposalCfg(nms_pre=1000, max_per_img=1000, nms=NmsCfg(iou_threshold=0.9)),
    )
    few = head.proposals(
        scores, deltas, hw, ProposalCfg(nms_pre=10, max_per_img=1000, nms=NmsCfg(iou_threshold=0.9))
    )
    capped = head.proposals(
        scores, deltas, hw, ProposalCfg(nms_pre=1000, max_per_img=7, nms=NmsCfg(iou_threshold=0.9))
    )
    strict = head.proposals(
        scores,
        deltas,
        hw,
        ProposalCfg(nms_pre=1000, max_per_img=1000, nms=NmsCfg(iou_threshold=0.3)),
    )
    assert all(len(p) <= 5 * 10 for p in few) and len(few[0]) < len(wide[0])
    assert [len(p) for p in capped] == [7, 7]
    assert len(strict[0]) < len(wide[0])
    for p in wide:  # best first, inside its image
        assert torch.all(p[:-1, 4] >= p[1:, 4])
    assert wide[1][:, 3].max() <= 96 and wide[0][:, 2].max() <= 128
    big = head.proposals(
        scores, deltas, hw, ProposalCfg(nms_pre=1000, max_per_img=1000, min_bbox_size=40)
    )
    wh = big[0][:, 2:4] - big[0][:, :2]
    assert len(big[0]) and (wh > 40).all()


def test_proposal_nms_works_within_a_level():
    head = rpn_head()
    scores, deltas = head(pyramid(batch=1))
    props = head.proposals(
        scores,
        deltas,
        torch.tensor([[128.0, 128.0]]),
        ProposalCfg(nms_pre=1000, max_per_img=1000, nms=NmsCfg(iou_threshold=0.5)),
    )[0]
    iou = bbox_overlaps(props[:, :4], props[:, :4]).fill_diagonal_(0)
    size = (props[:, 2] - props[:, 0]) * (props[:, 3] - props[:, 1])
    same_level = (
        size[:, None] - size[None, :]
    ).abs() < 1  # untrained: boxes keep their anchor size
    assert (iou[same_level] <= 0.5 + 1e-5).all()


def rpn_targets(**train_changes):
    cfg = tiny_cfg()["train_cfg"]["rpn"]
    cfg.update(train_changes)
    head = rpn_head()
    anchors = torch.cat(
        head.prior_generator.grid_anchors([(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)])
    )
    valid = torch.ones(1, anchors.shape[0], dtype=torch.bool)
    gt = [boxes([[10, 10, 60, 60], [64, 64, 120, 110]])]
    t = anchor_targets(
        anchors,
        valid,
        torch.tensor([[128.0, 128.0]]),
        gt,
        None,
        None,
        stage_train_cfg(cfg, "rpn"),
        1,
        True,
        head.bbox_coder,
    )
    return anchors, t


def sampled(t) -> torch.Tensor:
    """The anchors sampled for image 0 (slots with a loss weight)."""
    return t.inds[0][t.label_weights[0] > 0]


def test_allowed_border_excludes_anchors_crossing_the_image_edge():
    torch.manual_seed(0)
    anchors, everywhere = rpn_targets(allowed_border=-1)
    _, inside = rpn_targets(allowed_border=0)
    crossing = (anchors[:, :2] < 0).any(1) | (anchors[:, 2:] >= 128).any(1)
    assert crossing[sampled(everywhere)].any()
    assert not crossing[sampled(inside)].any()


def test_sampler_and_pos_weight_shape_the_rpn_targets():
    anchors, t = rpn_targets(pos_weight=3.0)
    assert t.num_samples == 64  # sampler num
    assert len(sampled(t).unique()) == 64  # without replacement
    pos = t.labels[0] == 0
    assert 0 < int(pos.sum()) <= 32 and (t.label_weights[0, pos] == 3.0).all()
    assert (t.label_weights[0, ~pos] == 1.0).all() and (t.labels[0, ~pos] == 1).all()
    # positives lead the slots; their box targets move the anchor onto a GT box
    num_pos = int(pos.sum())
    assert pos[:num_pos].all() and t.bbox_weights[0, :num_pos].eq(1).all()
    assert t.bbox_weights[0, num_pos:].eq(0).all() and t.bbox_targets[0, num_pos:].eq(0).all()
    gt = boxes([[10, 10, 60, 60], [64, 64, 120, 110]])
    moved = rpn_head().bbox_coder.decode(
        anchors[t.pos_inds[0, :num_pos]], t.bbox_targets[0, :num_pos]
    )
    assert bbox_overlaps(moved, gt).amax(1).gt(0.999).all()


def test_rpn_loss_on_an_image_without_objects():
    head = rpn_head()
    scores, deltas = head(pyramid(batch=1))
    losses = head.loss(
        scores, deltas, [boxes([])], torch.tensor([[128.0, 128.0]]), torch.tensor([[128.0, 128.0]])
    )
    assert losses["loss_rpn_bbox"] == 0 and losses["loss_rpn_cls"] > 0
    losses["loss_rpn_cls"].backward()


def extractor(**kw):
    cfg = {
        "type": "SingleRoIExtractor",
        "roi_layer": {"type": "RoIAlign", "output_size": 7, "sampling_ratio": 0},
        "out_channels": 4,
        "featmap_strides": [4, 8, 16, 32],
    }
    cfg.update(kw)
    return MODELS.build(cfg)


def test_roi_extractor_maps_rois_to_levels_by_size():
    rois = torch.tensor(
        [[0, 0, 0, 50, 50], [0, 0, 0, 120, 120], [0, 0, 0, 250, 250], [0, 0, 0, 900, 900]],
        dtype=torch.float32,
    )
    assert extractor().map_roi_levels(rois).tolist() == [0, 1, 2, 3]
    assert extractor(finest_scale=28).map_roi_levels(rois).tolist() == [0, 2, 3, 3]
    # each level filled with its own index: the pooled value says which level a RoI read
    feats = [torch.full((1, 4, 256 // s, 256 // s), float(i)) for i, s in enumerate([4, 8, 16, 32])]
    inside = torch.tensor(
        [[0, 0, 0, 40, 40], [0, 0, 0, 120, 120], [0, 0, 0, 240, 240]], dtype=torch.float32
    )
    pooled = extractor()(feats, inside)
    assert pooled.shape == (3, 4, 7, 7)
    assert pooled[:, 0, 3, 3].tolist() == [0.0, 1.0, 2.0]


def test_roi_layer_output_size_and_pooling_type():
    rois = torch.tensor([[0, 4, 4, 40, 40]], dtype=torch.float32)
    feats = [torch.randn(1, 4, 32 // s * 4, 32 // s * 4) for s in (1, 2, 4, 8)]
    assert extractor(roi_layer={"type": "RoIAlign", "output_size": 5})(feats, rois).shape == (
        1,
        4,
        5,
        5,
    )
    assert extractor(roi_layer={"type": "RoIPool", "output_size": [3, 2]})(feats, rois).shape == (
        1,
        4,
        3,
        2,
    )
    with pytest.raises(ModelError, match="featmap_strides"):
        extractor()(feats[:2], rois)


def test_roi_align_sampling_ratio_and_aligned_change_the_pooled_features():
    torch.manual_seed(0)
    feats = [torch.randn(1, 4, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    rois = torch.tensor([[0, 3.0, 5.0, 47.0, 41.0]])

    def pooled(**layer):
        return extractor(roi_layer={"type": "RoIAlign", "output_size": 7, **layer})(feats, rois)

    adaptive = pooled(sampling_ratio=0)
    assert not torch.allclose(adaptive, pooled(sampling_ratio=1))
    assert torch.allclose(adaptive, pooled(sampling_ratio=2))  # 44 px / stride 4 / 7 bins -> 2
    assert not torch.allclose(adaptive, pooled(sampling_ratio=0, aligned=False))


def test_rcnn_sampler_num_sets_the_rois_per_image():
    cfg = tiny_cfg()
    cfg["train_cfg"]["rcnn"]["sampler"]["num"] = 32
    model = build_model(cfg).train()
    seen = []
    model.roi_head.bbox_head.register_forward_hook(
        lambda m, args, out: seen.append(args[0].shape[0])
    )
    img = torch.randn(2, 3, 128, 128)
    meta = {"img_shape": (128, 128, 3), "pad_shape": (128, 128, 3)}
    gt = [boxes([[10, 10, 60, 60]]), boxes([[30, 40, 100, 120]])]
    model(img, [meta, meta], gt, [torch.tensor([0]), torch.tensor([2])])
    assert seen == [64]  # 32 RoIs for each of the two images, in one batched head call


def test_reg_class_agnostic_changes_the_box_head_outputs():
    head = tiny_cfg()["roi_head"]["bbox_head"]
    specific = MODELS.build(head)
    agnostic = MODELS.build({**head, "reg_class_agnostic": True})
    x = torch.randn(5, 64, 7, 7)
    assert specific(x)[1].shape == (5, 12) and agnostic(x)[1].shape == (5, 4)
    assert specific(x)[0].shape == (5, 4)  # 3 classes + background
    sigmoid = MODELS.build({**head, "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": True}})
    assert sigmoid(x)[0].shape == (5, 3)
    with pytest.raises(ModelError, match="roi_feat_size"):
        specific(torch.randn(5, 64, 5, 5))


def test_unknown_settings_in_train_and_test_cfg_are_errors():
    cfg = tiny_cfg()
    cfg["test_cfg"]["rcnn"]["max_per_imgs"] = 10
    with pytest.raises(
        ModelError, match=r"model.test_cfg.rcnn has no setting 'max_per_imgs'.*max_per_img"
    ):
        build_model(cfg)
    cfg = tiny_cfg()
    cfg["test_cfg"]["rcnn"]["nms"] = {"type": "soft_nms", "iou_threshold": 0.5}
    with pytest.raises(ModelError, match="soft_nms"):
        build_model(cfg)
    cfg = tiny_cfg()
    cfg["train_cfg"]["rpn"]["sampler"]["add_gt_as_proposals"] = True
    with pytest.raises(ModelError, match="add_gt_as_proposals"):
        build_model(cfg)

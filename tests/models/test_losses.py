"""Losses: each matches its textbook formula, and each config key (weights, beta...) takes effect."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_helpers import boxes

from detcli.errors import ModelError
from detcli.registry import MODELS

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
LABELS = torch.tensor([0, 2, 1])


def build(**cfg):
    import detcli.models  # noqa: F401  (registers the losses)

    return MODELS.build(cfg)


def test_softmax_cross_entropy_class_weight_and_loss_weight():
    ce = build(type="CrossEntropyLoss")
    assert ce(LOGITS, LABELS) == pytest.approx(float(F.cross_entropy(LOGITS, LABELS)))
    weighted = build(type="CrossEntropyLoss", class_weight=[1.0, 1.0, 5.0], loss_weight=2.0)
    expected = (
        F.cross_entropy(
            LOGITS, LABELS, weight=torch.tensor([1.0, 1.0, 5.0]), reduction="none"
        ).mean()
        * 2
    )
    assert weighted(LOGITS, LABELS) == pytest.approx(float(expected))
    with pytest.raises(ModelError, match="class_weight"):
        build(type="CrossEntropyLoss", class_weight=[1.0])(LOGITS, LABELS)


def test_sigmoid_cross_entropy_treats_the_last_label_as_background():
    ce = build(type="CrossEntropyLoss", use_sigmoid=True)
    labels = torch.tensor([0, 3, 1])  # 3 = background for 3 classes
    target = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 1.0, 0]])
    assert ce(LOGITS, labels) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(LOGITS, target))
    )


def test_avg_factor_and_element_weights():
    ce = build(type="CrossEntropyLoss")
    w = torch.tensor([1.0, 0.0, 1.0])
    per = F.cross_entropy(LOGITS, LABELS, reduction="none")
    assert ce(LOGITS, LABELS, w, avg_factor=4) == pytest.approx(
        float((per * w).sum() / 4), rel=1e-5
    )
    assert ce(LOGITS, LABELS, reduction_override="sum") == pytest.approx(float(per.sum()))


def test_focal_loss_down_weights_easy_examples():
    focal = build(type="FocalLoss", gamma=2.0, alpha=0.25)
    from torchvision.ops import sigmoid_focal_loss

    target = F.one_hot(LABELS, 3).float()
    assert focal(LOGITS, LABELS) == pytest.approx(
        float(sigmoid_focal_loss(LOGITS, target, 0.25, 2.0, "mean"))
    )
    easy = torch.tensor([[6.0, -6.0, -6.0]])
    hard = torch.tensor([[0.0, 0.0, 0.0]])
    gamma0 = build(type="FocalLoss", gamma=0.0, alpha=0.25)
    label = torch.tensor([0])
    assert focal(easy, label) / gamma0(easy, label) < focal(hard, label) / gamma0(hard, label)
    with pytest.raises(ModelError, match="sigmoid"):
        build(type="FocalLoss", use_sigmoid=False)


def test_regression_losses():
    pred = torch.tensor([[0.0, 0.0, 1.0, 3.0]])
    target = torch.zeros(1, 4)
    assert build(type="L1Loss")(pred, target) == pytest.approx(1.0)
    assert build(type="L1Loss", loss_weight=3.0)(pred, target) == pytest.approx(3.0)
    smooth = build(type="SmoothL1Loss", beta=1.0)(pred, target)
    assert smooth == pytest.approx((0.5 + 2.5) / 4)
    wide = build(type="SmoothL1Loss", beta=4.0)(pred, target)
    assert wide == pytest.approx((0.5 * 1 / 4 + 0.5 * 9 / 4) / 4)
    assert build(type="L1Loss")(pred[:0], target[:0]) == 0  # no positives: zero, no NaN


def test_giou_loss_on_boxes():
    giou = build(type="GIoULoss")
    a = boxes([[0, 0, 10, 10]])
    assert giou(a, a) == pytest.approx(0.0, abs=1e-6)
    far = boxes([[20, 0, 30, 10]])
    assert giou(a, far) == pytest.approx(1 + (300 - 200) / 300, rel=1e-5)  # 1 - (0 - 1/3)


def test_iou_losses_need_decoded_boxes_in_the_heads():
    from model_helpers import tiny_cfg

    from detcli.model_config import build_model

    cfg = tiny_cfg()
    cfg["roi_head"]["bbox_head"]["loss_bbox"] = {"type": "GIoULoss", "loss_weight": 10.0}
    with pytest.raises(ModelError, match="reg_decoded_bbox"):
        build_model(cfg)
    cfg["roi_head"]["bbox_head"]["reg_decoded_bbox"] = True
    build_model(cfg)


def test_bad_reduction_is_a_model_error():
    with pytest.raises(ModelError, match="reduction"):
        build(type="L1Loss", reduction="avg")

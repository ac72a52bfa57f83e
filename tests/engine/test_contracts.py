"""The typed contracts between model and engine: what a training forward may return, and the
schedulers' config keys (declared once on the base, still read from each signature)."""

from __future__ import annotations

import pytest
import torch

from detcli.engine.batches import parse_losses
from detcli.errors import ModelError
from detcli.registry import SCHEDULERS

SPAN_KEYS = ("by_epoch", "begin", "end", "convert_to_iter_based")


def test_losses_sum_per_level_lists_and_accept_plain_numbers():
    losses = {
        "loss_cls": torch.tensor([1.0, 3.0]),  # a mean is taken
        "loss_bbox": [torch.tensor(0.5), torch.tensor([0.25, 0.75])],  # per level: summed
        "acc": 97.5,  # logged only: not a `loss*` key
    }
    total, names, values = parse_losses(losses)
    assert names == ["loss_cls", "loss_bbox", "acc", "loss"]
    assert values.tolist() == pytest.approx([2.0, 1.0, 97.5, 3.0])
    assert float(total) == pytest.approx(3.0)


def test_a_loss_of_another_type_names_the_key():
    with pytest.raises(ModelError, match=r"'loss_cls' as a str"):
        parse_losses({"loss_cls": "0.5"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "name", ["LinearLR", "ConstantLR", "MultiStepLR", "StepLR", "ExponentialLR",
             "CosineAnnealingLR", "PolyLR"],
)  # fmt: skip
def test_every_scheduler_accepts_the_span_keys(name):
    signature = SCHEDULERS.signature(name)
    assert set(SPAN_KEYS) <= set(signature.arguments)
    assert not signature.accepts_any  # a misspelled key stays an error in `detcli check`


def test_span_keys_reach_the_rule():
    rule = SCHEDULERS.build(
        {"type": "MultiStepLR", "milestones": [3, 1], "by_epoch": False, "begin": 2, "end": 9}
    )
    assert (rule.milestones, rule.by_epoch, rule.begin, rule.end) == ([1, 3], False, 2, 9)
    constant = SCHEDULERS.build({"type": "ConstantLR", "factor": 0.5, "end": 4})
    assert (constant.constant, constant.end) == (0.5, 4)

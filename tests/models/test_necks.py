"""Necks: FPN and HRFPN honour their level, channel and extra-level settings."""

from __future__ import annotations

import pytest
import torch

import detcli.models  # noqa: F401  (registers the necks)
from detcli.errors import ModelError
from detcli.registry import MODELS

IN_CHANNELS = [8, 16, 32, 64]


def inputs(batch: int = 1, size: int = 64) -> list[torch.Tensor]:
    """Backbone-like maps at strides 4, 8, 16, 32 of a `size` px image."""
    torch.manual_seed(0)
    return [
        torch.randn(batch, c, size // s, size // s)
        for c, s in zip(IN_CHANNELS, [4, 8, 16, 32], strict=True)
    ]


def fpn(**kw):
    return MODELS.build({"type": "FPN", "in_channels": IN_CHANNELS, "out_channels": 12, **kw})


def test_fpn_num_outs_adds_max_pooled_levels():
    outs = fpn(num_outs=5)(inputs())
    assert [tuple(o.shape[1:]) for o in outs] == [
        (12, 16, 16),
        (12, 8, 8),
        (12, 4, 4),
        (12, 2, 2),
        (12, 1, 1),
    ]
    assert torch.equal(outs[4], outs[3][:, :, ::2, ::2])  # extra level: stride-2 subsample
    assert len(fpn(num_outs=4)(inputs())) == 4
    with pytest.raises(ModelError, match="num_outs"):
        fpn(num_outs=3)


def test_fpn_start_level_and_strides():
    neck = fpn(num_outs=4, start_level=1)
    outs = neck(inputs())
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1]
    assert neck.output_strides([4, 8, 16, 32]) == [8, 16, 32, 64]
    assert fpn(num_outs=6).output_strides([4, 8, 16, 32]) == [4, 8, 16, 32, 64, 128]
    with pytest.raises(ModelError, match="in_channels"):
        fpn(num_outs=5)(inputs()[:3])


@pytest.mark.parametrize("source", ["on_input", "on_lateral", "on_output"])
def test_fpn_extra_convs_read_from_the_configured_source(source):
    neck = fpn(num_outs=6, add_extra_convs=source)
    extra = neck.fpn_convs[4].conv
    assert extra.stride == (2, 2) and extra.in_channels == (64 if source == "on_input" else 12)
    outs = neck(inputs())
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1, 1]
    pooled = fpn(num_outs=6)(inputs())
    assert not torch.allclose(outs[4], pooled[4])


def test_relu_before_extra_convs_changes_the_top_level():
    torch.manual_seed(1)
    plain = fpn(num_outs=6, add_extra_convs="on_output")
    relu = fpn(num_outs=6, add_extra_convs="on_output", relu_before_extra_convs=True)
    relu.load_state_dict(plain.state_dict())
    a, b = plain(inputs()), relu(inputs())
    assert torch.equal(a[4], b[4]) and not torch.allclose(a[5], b[5])


def test_fpn_norm_and_activation():
    neck = fpn(num_outs=4, norm_cfg={"type": "GN", "num_groups": 4}, act_cfg={"type": "ReLU"})
    assert neck.lateral_convs[0].conv.bias is None and hasattr(neck.lateral_convs[0], "norm")
    assert all((o >= 0).all() for o in neck(inputs()))
    with pytest.raises(ModelError, match="act_cfg"):
        fpn(num_outs=4, act_cfg={"type": "GELU"})


def test_hrfpn_fuses_branches_and_pools_levels():
    neck = MODELS.build(
        {"type": "HRFPN", "in_channels": IN_CHANNELS, "out_channels": 12, "num_outs": 5}
    )
    outs = neck(inputs())
    assert [tuple(o.shape[1:]) for o in outs] == [
        (12, 16, 16),
        (12, 8, 8),
        (12, 4, 4),
        (12, 2, 2),
        (12, 1, 1),
    ]
    assert neck.reduction_conv.conv.in_channels == sum(IN_CHANNELS)
    assert neck.output_strides([4, 8, 16, 32]) == [4, 8, 16, 32, 64]
    maxed = MODELS.build(
        {"type": "HRFPN", "in_channels": IN_CHANNELS, "out_channels": 12, "pooling_type": "MAX"}
    )
    maxed.load_state_dict(neck.state_dict())
    assert torch.equal(maxed(inputs())[0], outs[0]) and not torch.allclose(
        maxed(inputs())[2], outs[2]
    )
    strided = MODELS.build(
        {
            "type": "HRFPN",
            "in_channels": IN_CHANNELS,
            "out_channels": 12,
            "num_outs": 3,
            "stride": 2,
        }
    )
    assert [o.shape[-1] for o in strided(inputs())] == [8, 4, 2]

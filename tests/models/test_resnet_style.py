"""ResNet `style: caffe` (mmdet's *caffe* configs): the stride sits in the first 1x1 conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import detcli.models  # noqa: F401  (registers the backbones)
from detcli.errors import ModelError
from detcli.registry import MODELS

DOWNSAMPLING = ("layer2", "layer3", "layer4")


def build(**cfg):
    # zero_init_residual off: with it the residual branches start as zeros and hide the style.
    return MODELS.build({"zero_init_residual": False, **cfg}).eval()


def first_block(backbone, layer):
    return getattr(backbone.body, layer)[0]


@pytest.fixture(scope="module")
def r50_pair():
    torch.manual_seed(0)
    pytorch = build(type="ResNet", depth=50, style="pytorch")
    caffe = build(type="ResNet", depth=50, style="caffe")
    caffe.load_state_dict(pytorch.state_dict())  # strict: same weight names and shapes
    return pytorch, caffe


def test_caffe_style_moves_the_stride_to_conv1_of_each_downsampling_bottleneck(r50_pair):
    pytorch, caffe = r50_pair
    for layer in DOWNSAMPLING:
        assert first_block(pytorch, layer).conv1.stride == (1, 1)
        assert first_block(pytorch, layer).conv2.stride == (2, 2)
        assert first_block(caffe, layer).conv1.stride == (2, 2)
        assert first_block(caffe, layer).conv2.stride == (1, 1)
    # layer1 does not downsample: no stride to move; later blocks are unchanged.
    assert first_block(caffe, "layer1").conv1.stride == (1, 1)
    assert caffe.body.layer2[1].conv1.stride == (1, 1) and caffe.body.layer2[1].conv2.stride == (
        1,
        1,
    )


def test_caffe_style_keeps_shapes_but_computes_something_else(r50_pair):
    pytorch, caffe = r50_pair
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = pytorch(x), caffe(x)
    assert [f.shape for f in a] == [f.shape for f in b]
    assert caffe.strides == pytorch.strides == [4, 8, 16, 32]
    assert torch.equal(a[0], b[0])  # the first stage has no stride to move
    assert not torch.allclose(a[1], b[1], atol=1e-3)


def test_caffe_conv1_is_the_1x1_conv_of_every_other_pixel(r50_pair):
    """By hand: a stride-2 1x1 conv reads the input's even rows and columns only."""
    _, caffe = r50_pair
    block = first_block(caffe, "layer2")
    x = torch.randn(1, 256, 8, 10, generator=torch.Generator().manual_seed(2))
    seen = {}
    handle = block.conv1.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        block(x)
    handle.remove()
    expected = F.conv2d(x[:, :, ::2, ::2], block.conv1.weight)
    assert seen["out"].shape == (1, 128, 4, 5)
    assert torch.allclose(seen["out"], expected, atol=1e-5)


def test_basic_blocks_ignore_the_style_as_in_mmdet():
    torch.manual_seed(0)
    pytorch = build(type="ResNet", depth=18, style="pytorch")
    caffe = build(type="ResNet", depth=18, style="caffe")
    caffe.load_state_dict(pytorch.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(pytorch(x), caffe(x), strict=True))


def test_resnext_caffe_style_moves_the_stride_too():
    with torch.device("meta"):
        caffe = MODELS.build(
            {"type": "ResNeXt", "depth": 50, "groups": 32, "base_width": 4, "style": "caffe"}
        )
    for layer in DOWNSAMPLING:
        assert first_block(caffe, layer).conv1.stride == (2, 2)
        assert first_block(caffe, layer).conv2.stride == (1, 1)


def test_unknown_style_names_the_choices():
    with pytest.raises(ModelError, match=r"pytorch .*caffe"):
        MODELS.build({"type": "ResNet", "depth": 50, "style": "tensorflow"})

"""init_cfg as in MMDetection: fills by layer type and by child name, Pretrained, and the order."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import detcli.models  # noqa: F401  (registers the backbones)
from detcli.errors import ModelError
from detcli.models.init_cfg import init_cfg_problems, read_init_cfg
from detcli.models.weight_init import init_weights, initialize
from detcli.registry import MODELS


class BoxHead(nn.Module):
    """A box head as detcli's parts are written: plain layers, and the init_cfg it was given."""

    def __init__(self, init_cfg=None, width: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3)
        self.bn = nn.BatchNorm2d(32)
        self.fc_cls = nn.Linear(width, 10)
        self.fc_reg = nn.Linear(width, 40)
        self.init_cfg = init_cfg


class Detector(nn.Module):
    def __init__(self, init_cfg=None, head_init_cfg=None):
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.heads = nn.ModuleList([BoxHead(head_init_cfg)])  # a plain container on the way
        self.init_cfg = init_cfg


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_constant_sets_exact_values_on_the_named_layer_types_only():
    head = BoxHead()
    initialize(
        head, {"type": "Constant", "val": 0.5, "bias": 2, "layer": ["Conv2d", "Linear"]}, "x"
    )
    for layer in (head.conv, head.fc_cls, head.fc_reg):
        assert torch.all(layer.weight == 0.5) and torch.all(layer.bias == 2)
    assert torch.all(head.bn.weight == 1) and torch.all(head.bn.bias == 0)  # not a named type
    # mmengine matches base classes too: BatchNorm2d is a _BatchNorm
    initialize(head, {"type": "Constant", "val": 3, "layer": "_BatchNorm"}, "x")
    assert torch.all(head.bn.weight == 3) and torch.all(head.bn.bias == 0)


def test_normal_kaiming_xavier_draw_with_the_configured_spread():
    torch.manual_seed(0)
    fc, conv = nn.Linear(1024, 512), nn.Conv2d(128, 256, 3)
    initialize(
        fc, {"type": "Normal", "mean": 0.1, "std": 0.02, "bias": 0.3, "layer": "Linear"}, "x"
    )
    assert fc.weight.mean().item() == pytest.approx(0.1, abs=1e-3)
    assert fc.weight.std().item() == pytest.approx(0.02, rel=0.01)
    assert torch.all(fc.bias == 0.3)
    initialize(conv, {"type": "Kaiming", "layer": "Conv2d"}, "x")  # fan_out, relu, normal
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    assert torch.all(conv.bias == 0)
    initialize(fc, {"type": "Xavier", "gain": 2, "distribution": "uniform", "layer": "Linear"}, "x")
    bound = 2 * math.sqrt(6 / (1024 + 512))
    assert fc.weight.abs().max().item() <= bound
    assert fc.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    initialize(fc, {"type": "TruncNormal", "std": 1, "a": -0.5, "b": 0.5, "layer": "Linear"}, "x")
    assert fc.weight.min().item() >= -0.5 and fc.weight.max().item() <= 0.5


def test_a_seed_draws_the_weights_mmengine_draws():
    """mmengine fills through nn.Module.apply (children before parents); so does detcli."""
    torch.manual_seed(7)
    ours = Detector()
    expected = Detector()
    expected.load_state_dict(ours.state_dict())
    torch.manual_seed(1)
    initialize(ours, {"type": "Normal", "std": 0.01, "layer": "Linear"}, "x")
    torch.manual_seed(1)

    def normal(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)

    expected.apply(normal)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in ours.state_dict().items())


def test_layer_filtering_leaves_other_layers_untouched():
    head = BoxHead()
    before = snapshot(head)
    initialize(head, {"type": "Kaiming", "layer": "Conv2d"}, "x")
    after = head.state_dict()
    assert not torch.equal(after["conv.weight"], before["conv.weight"])
    for key in ("fc_cls.weight", "fc_cls.bias", "fc_reg.weight", "bn.weight", "bn.running_mean"):
        assert torch.equal(after[key], before[key])


def test_override_by_name_with_the_entrys_own_or_its_own_type():
    # MMDetection's BBoxHead: no layer, so only the named children are filled
    head = BoxHead(width=2048)
    before = snapshot(head)
    initialize(
        head,
        [
            {"type": "Normal", "std": 0.01, "override": {"name": "fc_cls"}},
            {"type": "Normal", "std": 0.001, "override": {"name": "fc_reg"}},
        ],
        "model.roi_head.bbox_head.init_cfg",
    )
    assert head.fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert head.fc_reg.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.equal(head.conv.weight, before["conv.weight"])
    # RetinaNet's: a layer fill, and an override with its own type and a prior probability
    initialize(
        head,
        {
            "type": "Constant",
            "val": 1,
            "layer": "Linear",
            "override": [
                {"name": "fc_cls", "type": "Constant", "val": 0, "bias_prob": 0.01},
                {"name": "bn"},  # the entry's own Constant 1, on a layer type it does not list
            ],
        },
        "x",
    )
    assert torch.all(head.fc_reg.weight == 1) and torch.all(head.fc_cls.weight == 0)
    assert torch.allclose(head.fc_cls.bias, torch.full((10,), -math.log(99)))
    assert torch.all(head.bn.weight == 1) and torch.all(head.bn.bias == 0)


def test_a_list_of_init_cfgs_applies_each_in_order():
    head = BoxHead()
    initialize(
        head,
        [
            {"type": "Constant", "val": 1, "layer": ["Conv2d", "Linear"]},
            {"type": "Constant", "val": 4, "bias": 5, "layer": ["_BatchNorm", "GroupNorm"]},
            {"type": "Constant", "val": 2, "layer": "Linear"},
        ],
        "x",
    )
    assert torch.all(head.conv.weight == 1) and torch.all(head.fc_cls.weight == 2)
    assert torch.all(head.bn.weight == 4) and torch.all(head.bn.bias == 5)


def test_pretrained_with_prefix_loads_one_subtree_of_a_saved_detector(tmp_path):
    source = BoxHead()
    state = {f"roi_head.bbox_head.{k}": v for k, v in source.state_dict().items()}
    torch.save(
        {"state_dict": {**state, "backbone.conv1.weight": torch.zeros(1)}}, tmp_path / "d.pth"
    )
    head = BoxHead()
    # mmengine adds the dot: `roi_head.bbox_head` keeps `roi_head.bbox_head.conv.weight`
    cfg = {
        "type": "Pretrained",
        "checkpoint": str(tmp_path / "d.pth"),
        "prefix": "roi_head.bbox_head",
    }
    initialize(head, cfg, "model.roi_head.bbox_head.init_cfg")
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in head.state_dict().items())
    with pytest.raises(ModelError) as err:
        initialize(head, {**cfg, "prefix": "rpn_head."}, "model.roi_head.bbox_head.init_cfg")
    msg = str(err.value)
    assert "model.roi_head.bbox_head.init_cfg.checkpoint" in msg and "missing from the file" in msg
    assert "backbone., roi_head." in msg  # what the prefix could be


def test_a_childs_own_init_cfg_wins_over_its_parents_and_pretrained_comes_last(tmp_path):
    saved = Detector()
    torch.save(saved.state_dict(), tmp_path / "all.pth")
    model = Detector(
        init_cfg={"type": "Constant", "val": 1, "layer": "Linear"},
        head_init_cfg={"type": "Constant", "val": 2, "layer": "Linear"},
    )
    init_weights(model)
    assert torch.all(model.stem.weight == 1)  # the parent's fill
    assert torch.all(model.heads[0].fc_cls.weight == 2)  # the child's, after the parent's
    pretrained = {"type": "Pretrained", "checkpoint": str(tmp_path / "all.pth")}
    model = Detector(init_cfg=[pretrained, {"type": "Constant", "val": 1, "layer": "Linear"}])
    model.heads[0].init_cfg = {"type": "Constant", "val": 2, "layer": "Linear"}
    init_weights(model)
    assert all(torch.equal(v, saved.state_dict()[k]) for k, v in model.state_dict().items())


class Ordered(nn.Module):
    """A part with its own `init_weights()`: the code's default initialisation."""

    def __init__(self, init_cfg=None):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.init_cfg = init_cfg
        self.calls = 0

    def init_weights(self) -> None:
        self.calls += 1
        nn.init.constant_(self.fc.weight, 7)


class Foreign(nn.Linear):
    """A library's module with its own `init_weights()` but no init_cfg: never called."""

    def init_weights(self) -> None:
        raise AssertionError("modules without init_cfg keep the weights they were built with")


class Root(nn.Module):
    def __init__(self, part: Ordered):
        super().__init__()
        self.part, self.foreign, self.init_cfg = part, Foreign(2, 2), None

    def init_weights(self) -> None:
        init_weights(self)  # as a detector's `model.init_weights()` may: no endless recursion


def test_own_init_weights_runs_first_then_init_cfg_and_foreign_modules_are_left_alone():
    root = Root(Ordered())
    root.init_weights()
    assert root.part.calls == 1 and torch.all(root.part.fc.weight == 7)
    root = Root(Ordered({"type": "Constant", "val": 3, "layer": "Linear"}))
    init_weights(root)
    assert root.part.calls == 1 and torch.all(
        root.part.fc.weight == 3
    )  # init_cfg has the last word


def test_a_real_backbone_loads_pretrained_weights_through_the_walk(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    init = {"type": "Pretrained", "checkpoint": str(tmp_path / "r18.pth")}
    backbone = MODELS.build({"type": "ResNet", "depth": 18, "init_cfg": init})
    init_weights(backbone, "model.backbone")
    assert torch.equal(backbone.body.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


@pytest.mark.parametrize(
    ("cfg", "key", "words"),
    [
        ({"type": "Normall", "layer": "Linear"}, "type", "Did you mean 'Normal'"),
        ({"type": "Normal", "sdt": 1, "layer": "Linear"}, "sdt", "Did you mean 'std'"),
        (
            {"type": "Pretrained", "prefix": "backbone."},
            "checkpoint",
            "Pretrained needs checkpoint",
        ),
        ({"type": "Normal", "override": {"type": "Constant", "val": 1}}, "override", "with name"),
        ({"type": "Normal", "override": {"name": "fc", "std": 1}}, "override.type", "name alone"),
        ({"type": "Constant", "val": 1}, "", "neither layer nor override"),
        ({"type": "Kaiming", "mode": "fanin", "layer": "Conv2d"}, "mode", "'fan_in'"),
        ([{"type": "Uniform", "a": 1, "b": 0, "layer": "Linear"}], "0.b", "must be above a"),
        ({"type": "Normal", "bias_prob": 2, "layer": "Linear"}, "bias_prob", "between 0 and 1"),
    ],
)
def test_config_mistakes_name_the_key(cfg, key, words):
    where = "model.neck.init_cfg"
    with pytest.raises(ModelError, match=f"{where}{'.' + key if key else ''}: .*{words}"):
        read_init_cfg(cfg, where)
    assert [".".join(map(str, sub)) for sub, _ in init_cfg_problems(cfg)] == [key]


def test_problems_are_all_reported_for_check():
    cfg = [{"type": "Constant", "layer": "Linear"}, {"type": "Xavier", "gian": 1, "layer": "X"}]
    assert [sub for sub, _ in init_cfg_problems(cfg)] == [(0, "val"), (1, "gian")]
    assert init_cfg_problems(None) == [] and read_init_cfg(None, "x") == []


def test_mistakes_only_the_model_reveals_are_model_errors():
    head = BoxHead()
    with pytest.raises(
        ModelError, match=r"x\.layer: BoxHead has no Conv2D .*Did you mean 'Conv2d'"
    ):
        initialize(head, {"type": "Normal", "layer": "Conv2D"}, "x")
    with pytest.raises(ModelError, match=r"x\.override\.name: .*no child 'fc_clss'.*'fc_cls'"):
        initialize(head, {"type": "Normal", "override": {"name": "fc_clss"}}, "x")
    with pytest.raises(ModelError, match=r"x\.override: Kaiming cannot initialise bn\.weight"):
        initialize(head, {"type": "Kaiming", "override": {"name": "bn"}}, "x")

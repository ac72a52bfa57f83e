"""MMDetection's checkpoint names in `init_cfg.checkpoint` (`torchvision://NAME`,
`open-mmlab://NAME`): mapped to a torchvision/timm twin where one exists, otherwise a message
naming the file to download and the key to point at it; never a mangled `open-mmlab:/...`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from detcli.errors import ModelError
from detcli.models.backbones.pretrained import hub_name, read_state_dict


def _config(tmp_path: Path, checkpoint: str, backbone: str = "") -> Path:
    """The tiny shapes model (ResNet-18) with an MMDetection-style pretrained checkpoint."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"_base_: {REPO / 'configs/shapes/faster_rcnn_r18_fpn_shapes.yaml'}\n"
        "data: null\nevaluation: null\n"
        "model:\n"
        "  backbone:\n"
        f"{backbone}"
        f"    init_cfg: {{type: Pretrained, checkpoint: '{checkpoint}'}}\n"
    )
    return path


def test_torchvision_scheme_is_torchvisions_original_weights(cli, tmp_path):
    result = cli("check", str(_config(tmp_path, "torchvision://resnet18")))
    assert result.code == 0, result.out
    assert "no problems found" in result.out
    assert hub_name("torchvision://resnet50") == "torchvision:resnet50.IMAGENET1K_V1"


def test_open_mmlab_name_with_a_twin_is_checked_as_the_twin(cli, tmp_path):
    """ResNeXt-101 64x4d weights under a ResNet-18: the mismatch names both spellings."""
    result = cli("check", str(_config(tmp_path, "open-mmlab://resnext101_64x4d")))
    assert result.code == 2
    assert "'open-mmlab://resnext101_64x4d' (here torchvision:resnext101_64x4d" in result.out
    assert "holds weights for resnext101_64x4d, but the backbone is resnet18" in result.out
    assert "does not exist" not in result.out  # not taken for a file name


def test_open_mmlab_name_without_a_twin_says_what_to_download(cli, tmp_path):
    result = cli("check", str(_config(tmp_path, "open-mmlab://detectron/resnet50_gn")))
    assert result.code == 2
    out = " ".join(result.out.split())
    assert "model.backbone.init_cfg.checkpoint" in out
    assert (
        "Download https://download.openmmlab.com/pretrain/third_party/resnet50_gn-9186a21c" in out
    )
    assert "point model.backbone.init_cfg.checkpoint at it" in out
    assert "open-mmlab:/d" not in out


def test_loading_an_unmapped_name_names_it_unmangled():
    """What `train` meets when it loads the weights (check skipped)."""
    with pytest.raises(ModelError) as info:
        read_state_dict("open-mmlab://some/other_weights")
    message = str(info.value)
    assert "'open-mmlab://some/other_weights'" in message
    assert "open_mmlab.json" in message and "open-mmlab:/s" not in message

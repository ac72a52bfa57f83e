"""init_cfg: pretrained backbone weights from local files (timm or torchvision names) or hub names."""

from __future__ import annotations

import socket

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import detcli.models  # noqa: F401  (registers the backbones)
from detcli.errors import ModelError
from detcli.registry import MODELS


def resnet18(checkpoint: str | None, **extra) -> torch.nn.Module:
    init = None if checkpoint is None else {"type": "Pretrained", "checkpoint": checkpoint, **extra}
    return MODELS.build({"type": "ResNet", "depth": 18, "init_cfg": init})


@pytest.fixture(scope="module")
def tv_resnet18(tmp_path_factory) -> tuple[str, dict]:
    """A torchvision-named ResNet-18 state dict on disk (random weights stand in for ImageNet)."""
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18-tv.pth"
    torch.save(state, path)
    return str(path), state


def test_torchvision_file_loads_and_only_the_classifier_is_left_over(tv_resnet18):
    path, state = tv_resnet18
    model = resnet18(path)
    assert not torch.equal(model.body.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    model.init_weights()  # building never loads: weights are read only before training
    assert torch.equal(model.body.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(model.body.bn1.running_var, state["bn1.running_var"])
    from detcli.models import load_pretrained

    report = load_pretrained(model, path)
    assert sorted(report.unused) == ["fc.bias", "fc.weight"] and report.loaded == len(
        model.body.state_dict()
    )


def test_timm_safetensors_file_and_detector_checkpoints_load(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    save_file(state, str(tmp_path / "model.safetensors"))
    model = resnet18(str(tmp_path / "model.safetensors"))
    model.init_weights()
    assert torch.equal(model.body.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    # a whole-detector checkpoint as trainers write it: {"state_dict": {"backbone.…": …, "neck.…": …}}
    wrapped = {
        "state_dict": {**{f"backbone.{k}": v for k, v in state.items()}, "neck.x": torch.zeros(1)}
    }
    torch.save(wrapped, tmp_path / "detector.pth")
    other = resnet18(str(tmp_path / "detector.pth"))
    other.init_weights()
    assert torch.equal(other.body.layer4[1].bn2.weight, state["layer4.1.bn2.weight"])
    prefixed = resnet18(str(tmp_path / "detector.pth"), prefix="backbone.")
    prefixed.init_weights()
    with pytest.raises(ModelError, match=r"no key .* starts with 'head\.'"):
        resnet18(str(tmp_path / "detector.pth"), prefix="head.").init_weights()


def test_weights_of_another_architecture_list_missing_and_unexpected_keys(tmp_path):
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ModelError) as err:
        resnet18(str(tmp_path / "r34.pth")).init_weights()
    msg = str(err.value)
    assert "model.backbone.init_cfg.checkpoint" in msg and "r34.pth" in msg
    assert "unexpected in the file" in msg and "layer1.2.conv1.weight" in msg
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(
        ModelError, match=r"shape mismatch \(\d+\): layer1.0.conv1.weight: file \(64, 64, 1, 1\)"
    ):
        resnet18(str(tmp_path / "r50.pth")).init_weights()


def test_missing_or_unreadable_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resnet18(str(tmp_path / "nope.pth")).init_weights()
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="not a readable"):
        resnet18(str(tmp_path / "junk.pth")).init_weights()
    with pytest.raises(ModelError, match="neither layer nor override"):
        MODELS.build({"type": "ResNet", "depth": 18, "init_cfg": {"type": "Kaiming"}})


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, and empty download caches (so nothing is found locally either)."""

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


def test_hub_names_without_network_say_which_file_to_fetch(offline):
    with pytest.raises(ModelError) as err:
        resnet18("torchvision:resnet18").init_weights()
    msg = str(err.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert "--set model.backbone.init_cfg.checkpoint=" in msg
    with pytest.raises(ModelError) as err:
        resnet18("timm:resnet18.a1_in1k").init_weights()
    assert "huggingface.co/timm/resnet18.a1_in1k" in str(err.value)
    assert "model.backbone.init_cfg.checkpoint" in str(err.value)


def test_unknown_hub_names_list_what_exists():
    with pytest.raises(ModelError, match=r"resnet18\.a1_in1k"):
        resnet18("timm:resnet18.nope").init_weights()
    with pytest.raises(ModelError, match="torchvision has no weights"):
        resnet18("torchvision:resnet18.NOPE").init_weights()

"""Transformer backbones through TimmBackbone: Swin (channels-last maps) and ViT (a fixed
input size in timm) check, train and run at detection image sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import REPO, run_detcli
from detcli.models.backbones.timm_backbone import TimmBackbone

# Widths and depths shrunk through model_kwargs: the same architectures, seconds on a CPU.
SMALL_SWIN = "{embed_dim: 16, depths: [1, 1, 1, 1], num_heads: [1, 1, 1, 1]}"
SMALL_VIT = "{embed_dim: 24, depth: 3, num_heads: 1}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder next to configs/ with a 4-image synthetic train/val set (64 px)."""
    root = tmp_path_factory.mktemp("transformers")
    (root / "configs").symlink_to(REPO / "configs")
    args = ["dataset", "synth", "data", "--images", "4", "--size", "64", "--classes", "3"]
    result = run_detcli(*args, "--split", "train", "--split", "val", cwd=root)
    assert result.code == 0, result.err
    return root


def _swin_config(root: Path) -> Path:
    path = root / "swin.yaml"
    path.write_text(
        "_base_: configs/demo/shapes.yaml\n"
        "data_root: data\n"
        "data: {samples_per_gpu: 2}\n"
        "model:\n"
        "  backbone:\n"
        "    _delete_: true\n"
        "    type: TimmBackbone\n"
        "    model_name: swin_tiny_patch4_window7_224\n"
        f"    model_kwargs: {SMALL_SWIN}\n"
        "  neck: {in_channels: [16, 32, 64, 128]}\n"
        "lr_config: {warmup_iters: 1, step: [1]}\n"
        "runner: {max_epochs: 2}\n"
        "evaluation: {interval: 2}\n"
    )
    return path


def test_swin_checks_and_trains_through_the_cli(workdir):
    config = _swin_config(workdir)
    checked = run_detcli("check", str(config), cwd=workdir)
    assert checked.code == 0, checked.out
    assert "no problems found" in checked.out
    trained = run_detcli("train", str(config), "--work-dir", "runs/swin", cwd=workdir)
    assert trained.code == 0, trained.err[-2000:]
    assert "Traceback" not in trained.err
    assert (workdir / "runs/swin/epoch_2.pth").is_file()
    assert "bbox_mAP" in trained.out + trained.err


def test_swin_feature_maps_are_nchw_at_any_padded_size():
    backbone = TimmBackbone("swin_tiny_patch4_window7_224", model_kwargs=eval_kwargs(SMALL_SWIN))
    assert backbone.strides == [4, 8, 16, 32]
    maps = backbone(torch.zeros(1, 3, 96, 160))  # not timm's 224 x 224
    assert [tuple(m.shape) for m in maps] == [
        (1, 16, 24, 40),
        (1, 32, 12, 20),
        (1, 64, 6, 10),
        (1, 128, 3, 5),
    ]


def test_vit_runs_at_detection_sizes_and_check_names_its_single_stride(workdir):
    backbone = TimmBackbone("vit_tiny_patch16_224", model_kwargs=eval_kwargs(SMALL_VIT))
    maps = backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 24, 4, 6)] * 3
    config = workdir / "vit.yaml"
    config.write_text(
        "_base_: swin.yaml\n"
        "model:\n"
        "  backbone:\n"
        "    _delete_: true\n"
        "    type: TimmBackbone\n"
        "    model_name: vit_tiny_patch16_224\n"
        f"    model_kwargs: {SMALL_VIT}\n"
        "  neck: {in_channels: [24, 24, 24]}\n"
    )
    _swin_config(workdir)
    checked = run_detcli("check", str(config), cwd=workdir)
    assert checked.code == 2
    assert "Traceback" not in checked.err
    assert "the FPN neck outputs levels with strides [16, 16, 16, 32, 64]" in checked.out


def eval_kwargs(text: str) -> dict[str, object]:
    """The model_kwargs flow mapping above as a dict (YAML, as the config reads it)."""
    import yaml

    return yaml.safe_load(text)  # type: ignore[no-any-return]

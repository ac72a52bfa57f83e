"""MMDetection 2.x / 3.x checkpoint files loaded into detcli models: names, classes, refusals."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from detcli.config import load_config
from detcli.engine.checkpoint import fit_checkpoint, load_checkpoint
from detcli.errors import CheckpointError
from detcli.models import build_model

REPO = Path(__file__).resolve().parents[2]
SHAPES = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"
CLASSES = ["square", "circle", "triangle"]


def _model() -> torch.nn.Module:
    return build_model(load_config(SHAPES).model.to_dict())


def _as_mmdet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """detcli names -> MMDetection's: no timm `body`, a single-conv `rpn_conv`."""
    return {
        k.replace("backbone.body.", "backbone.").replace("rpn_conv.0.", "rpn_conv."): v
        for k, v in state.items()
    }


class HistoryBuffer:
    """Pickled under mmengine's name, as MMDetection 3.x's message hub holds it."""

    def __init__(self) -> None:
        self.data = np.arange(3.0)


@pytest.fixture
def mmengine_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `mmengine.logging.history_buffer.HistoryBuffer` picklable while saving only."""
    module = types.ModuleType("mmengine.logging.history_buffer")
    module.HistoryBuffer = HistoryBuffer  # type: ignore[attr-defined]
    HistoryBuffer.__module__ = module.__name__
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.setitem(
            sys.modules, name, module if name.endswith("buffer") else types.ModuleType(name)
        )


def test_mmdet3_checkpoint_with_mmengine_objects_loads_every_tensor(tmp_path, mmengine_module):
    source = _model()
    path = tmp_path / "epoch_12.pth"
    torch.save(
        {
            "meta": {"dataset_meta": {"classes": tuple(CLASSES)}, "seed": np.int64(0)},
            "state_dict": _as_mmdet(source.state_dict()),
            "message_hub": {"log_scalars": {"train/loss": HistoryBuffer()}},
        },
        path,
    )
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        sys.modules.pop(name)  # detcli reads the file without mmengine installed
    checkpoint = load_checkpoint(path)  # no code from the file runs: placeholders
    model = _model()
    fitted = fit_checkpoint(model, checkpoint, path)
    assert fitted.source == "mmdet 3.x" and fitted.classes == CLASSES
    assert fitted.report.complete
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_mmdet2_classes_and_a_stacked_rpn_conv_are_read(tmp_path):
    source = _model()
    weights = _as_mmdet(source.state_dict())
    checkpoint = {"meta": {"CLASSES": CLASSES, "mmdet_version": "2.28.2"}, "state_dict": weights}
    fitted = fit_checkpoint(_model(), checkpoint, tmp_path / "x.pth")
    assert fitted.source == "mmdet 2.x" and fitted.classes == CLASSES and fitted.report.complete


def test_fine_tuning_takes_class_rows_by_name(tmp_path):
    source = _model()
    checkpoint = {"meta": {"CLASSES": CLASSES}, "state_dict": source.state_dict()}
    cfg = load_config(SHAPES, ["model.roi_head.bbox_head.num_classes=2"])
    model = build_model(cfg.model.to_dict())
    fitted = fit_checkpoint(
        model, checkpoint, tmp_path / "x.pth", classes=["triangle", "star"], fine_tune=True
    )
    assert fitted.class_mapping is not None
    assert fitted.class_mapping.rows == [("triangle", 2), ("star", None)]
    own, src = model.state_dict(), source.state_dict()
    cls = "roi_head.bbox_head.fc_cls.weight"
    assert torch.equal(own[cls][0], src[cls][2])  # triangle's row
    assert torch.equal(own[cls][2], src[cls][3])  # background, last in both
    assert not torch.equal(own[cls][1], src[cls][1])  # star: new
    reg = "roi_head.bbox_head.fc_reg.weight"
    assert torch.equal(own[reg][0:4], src[reg][8:12])
    assert fitted.report.complete  # rebuilt rows have the model's shape


# The heads' widths left out: they follow the neck's out_channels.
HEADS_FROM_NECK = [
    "model.rpn_head.in_channels=null",
    "model.roi_head.bbox_roi_extractor.out_channels=null",
    "model.roi_head.bbox_head.in_channels=null",
]


def test_another_backbone_is_refused_and_other_neck_widths_fine_tune(tmp_path):
    r50 = build_model(
        load_config(
            SHAPES,
            [
                "model.backbone.depth=50",
                "model.neck.in_channels=[256,512,1024,2048]",
                "model.neck.out_channels=32",
                *HEADS_FROM_NECK,
            ],
        ).model.to_dict()
    )
    with pytest.raises(CheckpointError) as err:  # some 3x3 convs fit, nothing of the neck
        fit_checkpoint(_model(), {"state_dict": r50.state_dict()}, tmp_path / "r50.pth")
    message = str(err.value)
    assert "is for another network: none of its neck tensors fits" in message
    assert "shape mismatch  backbone.body.layer1.0.conv1.weight" in message

    narrow = build_model(
        load_config(SHAPES, ["model.neck.out_channels=32", *HEADS_FROM_NECK]).model.to_dict()
    )
    fitted = fit_checkpoint(
        _model(), {"state_dict": narrow.state_dict()}, tmp_path / "n.pth", fine_tune=True
    )
    assert fitted.report.loaded["backbone"] == fitted.report.total["backbone"]
    assert "neck.fpn_convs.0.conv.weight (checkpoint [32, 32, 3, 3]" in str(fitted.report.rows())

"""In 3.x normalisation and batch padding live in the model; both arrangements must give
identical inputs to the backbone, identical losses and identical detections.

Batch A: a 2.x pipeline (Normalize + Pad per image) and collate. Batch B: a 3.x pipeline
(Resize scale, PackDetInputs meta_keys, TestTimeAug; raw pixels) and collate, normalised and
padded by `model.data_preprocessor`.
Real PNG files of two different sizes go through both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from model_helpers import tiny_cfg

from detcli.data import build_dataset
from detcli.data.collate import collate
from detcli.data.synthetic import write_shapes_coco
from detcli.models import build_model

RGB = {
    "mean": [123.675, 116.28, 103.53],
    "std": [58.395, 57.12, 57.375],
    "to_rgb": True,
    "style": "pytorch",
}
CAFFE = {
    "mean": [103.53, 116.28, 123.675],
    "std": [1.0, 1.0, 1.0],
    "to_rgb": False,
    "style": "caffe",
}
SCALE = [120, 90]  # long edges of 120 px: not a multiple of 32, so padding shows
SCALE_2 = [80, 60]
LOAD = [{"type": "LoadImageFromFile"}, {"type": "LoadAnnotations", "with_bbox": True}]
RESIZE = {"type": "Resize", "img_scale": SCALE, "keep_ratio": True}
PAD = {"type": "Pad", "size_divisor": 32}


def normalize(norm: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Normalize", "mean": norm["mean"], "std": norm["std"], "to_rgb": norm["to_rgb"]}


def pipelines_2x(norm: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """mmdet 2.x train and TTA test pipelines: Normalize and Pad per image."""
    train = [
        *LOAD,
        RESIZE,
        normalize(norm),
        PAD,
        {"type": "DefaultFormatBundle"},
        {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_labels"]},
    ]
    inner = [
        {"type": "Resize", "keep_ratio": True},
        {"type": "RandomFlip"},
        normalize(norm),
        PAD,
        {"type": "ImageToTensor", "keys": ["img"]},
        {"type": "Collect", "keys": ["img"]},
    ]
    return train, _tta(inner)


# mmdet 3.3's test meta_keys (its test pipelines leave out pad_shape and flip).
META_3X = ["img_id", "img_path", "ori_shape", "img_shape", "scale_factor"]


def pipelines_3x() -> tuple[list[dict[str, Any]], ...]:
    """mmdet 3.x train, single-view test and TTA test pipelines: raw pixels, PackDetInputs."""
    resize = {"type": "Resize", "scale": SCALE, "keep_ratio": True}
    pack = {"type": "PackDetInputs", "meta_keys": META_3X}
    train = [*LOAD, resize, {"type": "PackDetInputs"}]
    single = [{"type": "LoadImageFromFile"}, resize, pack]
    resizes = [{"type": "Resize", "scale": s, "keep_ratio": True} for s in (SCALE, SCALE_2)]
    flips = [{"type": "RandomFlip", "prob": 0.0}, {"type": "RandomFlip", "prob": 1.0}]
    tta = {"type": "TestTimeAug", "transforms": [resizes, flips, [pack]]}
    return train, single, [{"type": "LoadImageFromFile"}, tta]


def _tta(inner: list[dict[str, Any]]) -> list[dict[str, Any]]:
    aug = {
        "type": "MultiScaleFlipAug",
        "img_scale": [SCALE, SCALE_2],
        "flip": True,
        "transforms": inner,
    }
    return [{"type": "LoadImageFromFile"}, aug]


def preprocessor(norm: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "DetDataPreprocessor",
        "mean": norm["mean"],
        "std": norm["std"],
        "bgr_to_rgb": norm["to_rgb"],
        "pad_size_divisor": 32,
    }


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """Two COCO sets of real PNG shapes images, 100x70 and 50x70 px (w x h)."""
    root = tmp_path_factory.mktemp("shapes")
    return [
        write_shapes_coco(root, num_images=1, image_size=(100, 70), split="wide"),
        write_shapes_coco(root, num_images=1, image_size=(50, 70), split="tall"),
    ]


def load_batch(sets: list[tuple[Path, Path]], pipeline: list[dict[str, Any]], test: bool) -> dict:
    """One image from each set through `pipeline`, collated as the loader does."""
    samples = []
    for ann, prefix in sets:
        cfg = {
            "type": "CocoDataset",
            "ann_file": str(ann),
            "img_prefix": str(prefix),
            "pipeline": pipeline,
        }
        samples.append(build_dataset(cfg, test_mode=test)[0])
    return collate(samples)


def model_pair(norm: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The tiny Faster R-CNN without (2.x) and with (3.x) a data_preprocessor, same weights."""
    torch.manual_seed(0)
    old = build_model(tiny_cfg(backbone__style=norm["style"]))
    new = build_model(
        {**tiny_cfg(backbone__style=norm["style"]), "data_preprocessor": preprocessor(norm)}
    )
    new.load_state_dict(old.state_dict())
    return old, new


def backbone_inputs(model: torch.nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("norm", [RGB, CAFFE], ids=["rgb", "caffe"])
def test_training_batches_give_the_backbone_the_same_tensor_and_the_same_losses(image_sets, norm):
    train_2x, _ = pipelines_2x(norm)
    train_3x, _, _ = pipelines_3x()
    batch_a = load_batch(image_sets, train_2x, test=False)
    batch_b = load_batch(image_sets, train_3x, test=False)
    assert batch_a["img"].shape != batch_b["img"].shape  # B is raw, unpadded: the model pads it
    old, new = model_pair(norm)
    seen_a, seen_b = backbone_inputs(old), backbone_inputs(new)
    metas_b: list[Any] = []
    new.data_preprocessor.register_forward_hook(lambda m, args, out: metas_b.append(out[1]))
    old.train(), new.train()
    torch.manual_seed(1)
    losses_a = old(**batch_a)
    torch.manual_seed(1)
    losses_b = new(**batch_b)

    assert seen_a[0].shape == (2, 3, 128, 128)
    assert torch.equal(seen_a[0], seen_b[0])
    for meta_a, meta_b in zip(batch_a["img_metas"], metas_b[0], strict=True):
        assert meta_b["pad_shape"] == meta_a["pad_shape"]
        assert meta_b["batch_input_shape"] == meta_a["batch_input_shape"] == (128, 128)
        assert meta_b["img_shape"] == meta_a["img_shape"]
    assert set(losses_a) == set(losses_b)
    for key in losses_a:
        assert torch.allclose(losses_a[key], losses_b[key], rtol=0, atol=1e-6), key


@pytest.mark.parametrize("norm", [RGB, CAFFE], ids=["rgb", "caffe"])
def test_inference_gives_the_same_detections_single_view_and_with_tta(image_sets, norm):
    _, tta_2x = pipelines_2x(norm)
    _, single_3x, tta_3x = pipelines_3x()
    old, new = model_pair(norm)
    old.eval(), new.eval()
    # Single view: 2.x MultiScaleFlipAug with one scale, no flip; 3.x Resize + PackDetInputs.
    single_2x = [tta_2x[0], {**tta_2x[1], "img_scale": SCALE, "flip": False}]
    for pipe_a, pipe_b, views in ((single_2x, single_3x, 1), (tta_2x, tta_3x, 4)):
        batch_a = load_batch(image_sets, pipe_a, test=True)
        batch_b = load_batch(image_sets, pipe_b, test=True)
        assert len(batch_a["img"]) == views  # 3.x single view: a plain (B, C, H, W) batch
        seen_a, seen_b = backbone_inputs(old), backbone_inputs(new)
        with torch.no_grad():
            dets_a = old(img=batch_a["img"], img_metas=batch_a["img_metas"], return_loss=False)
            dets_b = new(img=batch_b["img"], img_metas=batch_b["img_metas"], return_loss=False)
        assert len(seen_a) == len(seen_b) == views
        assert all(torch.equal(a, b) for a, b in zip(seen_a, seen_b, strict=True))
        assert sum(len(d) for d in dets_a) > 0
        for det_a, det_b in zip(dets_a, dets_b, strict=True):
            assert torch.equal(det_a.labels, det_b.labels)
            assert torch.allclose(det_a.boxes, det_b.boxes, atol=1e-4)
            assert torch.allclose(det_a.scores, det_b.scores, atol=1e-6)

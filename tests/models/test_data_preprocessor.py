"""DetDataPreprocessor (mmdet 3.x `model.data_preprocessor`): channel order, normalise, pad."""

from __future__ import annotations

import copy

import pytest
import torch
from model_helpers import TINY_MODEL, tiny_cfg

from detcli.config import resolve_config
from detcli.config.check import check_config
from detcli.data.collate import collate
from detcli.data.transforms import Normalize, Pad
from detcli.errors import ModelError
from detcli.models import DetDataPreprocessor, build_model
from detcli.registry import MODELS

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def raw_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A float32 (3, h, w) RGB image of raw 0-255 pixel values, as PackDetInputs hands it on."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=gen).float()


def raw_batch(sizes: list[tuple[int, int]]) -> tuple[torch.Tensor, list[dict]]:
    """Raw images of `sizes` collated as detcli's loader does (zero-padded to the largest)."""
    samples = [
        {
            "img": raw_image(h, w, seed=k),
            "img_metas": {"img_shape": (h, w, 3), "pad_shape": (h, w, 3)},
        }
        for k, (h, w) in enumerate(sizes)
    ]
    batch = collate(samples)
    return batch["img"], batch["img_metas"]


def test_bgr_to_rgb_keeps_detcli_rgb_order_and_matches_normalize():
    img, metas = raw_batch([(40, 50)])
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    out, _ = pre(img, metas)
    expected = Normalize(MEAN, STD, to_rgb=True)({"img": img[0]})["img"]
    assert torch.equal(out[0], expected)  # bit for bit what the 2.x Normalize gives
    assert torch.allclose(out[0, 0], (img[0, 0] - MEAN[0]) / STD[0], atol=1e-5)


def test_without_bgr_to_rgb_the_model_sees_bgr_as_under_mmdet():
    img, metas = raw_batch([(20, 30)])
    caffe_mean = [103.53, 116.28, 123.675]  # B, G, R as in mmdet's caffe configs
    out, _ = DetDataPreprocessor(mean=caffe_mean, std=[1.0, 1.0, 1.0])(img, metas)
    assert torch.equal(out[0, 0], img[0, 2] - 103.53)  # channel 0 is blue
    assert torch.equal(out[0, 2], img[0, 0] - 123.675)
    expected = Normalize(caffe_mean, [1.0, 1.0, 1.0], to_rgb=False)({"img": img[0]})["img"]
    assert torch.equal(out[0], expected)
    # rgb_to_bgr is the same channel swap as bgr_to_rgb in mmengine: detcli's RGB stays.
    swapped, _ = DetDataPreprocessor(rgb_to_bgr=True)(img, metas)
    assert torch.equal(swapped, img)


def test_padding_happens_after_normalising_with_pad_value():
    img, metas = raw_batch([(40, 50), (30, 20)])
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32, pad_value=7)
    out, new_metas = pre(img, metas)
    assert out.shape == (2, 3, 64, 64)
    # Image 1's own pixels are normalised; everything past its 30x20 is pad_value, including
    # the zeros collate put there in raw pixel space (they would be -mean/std otherwise).
    assert torch.allclose(
        out[1, :, :30, :20],
        (img[1, :, :30, :20] - torch.tensor(MEAN)[:, None, None])
        / torch.tensor(STD)[:, None, None],
        atol=1e-5,
    )
    assert (out[1, :, 30:, :] == 7).all() and (out[1, :, :, 20:] == 7).all()
    assert (out[0, :, 40:, :] == 7).all() and (out[0, :, :, 50:] == 7).all()
    assert [m["pad_shape"] for m in new_metas] == [(64, 64, 3), (32, 32, 3)]
    assert all(m["batch_input_shape"] == (64, 64) for m in new_metas)
    # The caller's batch and metas are untouched, so the same batch can be fed again.
    assert metas[1]["pad_shape"] == (30, 20, 3) and metas[1]["batch_input_shape"] == (40, 50)
    again, _ = pre(img, metas)
    assert torch.equal(again, out)


def test_matches_the_2x_pipeline_normalize_then_pad_per_image():
    sizes = [(40, 50), (30, 20), (33, 64)]
    img, metas = raw_batch(sizes)
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    out, new_metas = pre(img, metas)
    normalize, pad = Normalize(MEAN, STD, to_rgb=True), Pad(size_divisor=32)
    old = [pad(normalize({"img": img[k, :, :h, :w]})) for k, (h, w) in enumerate(sizes)]
    old_batch = collate(
        [{"img": r["img"], "img_metas": {"pad_shape": r["pad_shape"]}} for r in old]
    )
    assert torch.equal(out, old_batch["img"])
    assert [m["pad_shape"] for m in new_metas] == [r["pad_shape"] for r in old]
    assert [m["batch_input_shape"] for m in new_metas] == [
        m["batch_input_shape"] for m in old_batch["img_metas"]
    ]


def test_no_mean_no_padding_leaves_pixels_but_fixes_the_channel_order():
    img, metas = raw_batch([(32, 32)])
    out, new_metas = DetDataPreprocessor(bgr_to_rgb=True)(img, metas)
    assert torch.equal(out, img) and new_metas[0]["pad_shape"] == (32, 32, 3)
    flipped, _ = DetDataPreprocessor()(img, metas)
    assert torch.equal(flipped, img.flip(1))


def test_test_time_augmentation_views_are_processed_each():
    views = [raw_batch([(40, 50), (30, 20)]), raw_batch([(20, 25), (15, 10)])]
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=16)
    imgs, metas = pre([v[0] for v in views], [v[1] for v in views])
    assert [tuple(i.shape[-2:]) for i in imgs] == [(48, 64), (32, 32)]
    assert [m[1]["pad_shape"] for m in metas] == [(32, 32, 3), (16, 16, 3)]
    for (img, meta), out in zip(views, imgs, strict=True):
        assert torch.equal(out, pre(img, meta)[0])


def test_autocast_keeps_float32_and_the_same_values():
    img, metas = raw_batch([(40, 50), (30, 20)])
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    plain, _ = pre(img, metas)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto, _ = pre(img, metas)
    assert auto.dtype == torch.float32 and torch.equal(auto, plain)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_result_also_under_autocast():
    img, metas = raw_batch([(40, 50), (30, 20)])
    pre = DetDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    cpu, _ = pre(img, metas)
    gpu, _ = pre.cuda()(img.cuda(), metas)
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-6)
    with torch.autocast("cuda", dtype=torch.float16):
        amp, _ = pre(img.cuda(), metas)
    assert amp.dtype == torch.float32 and torch.equal(amp, gpu)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"bgr_to_rgb": True, "rgb_to_bgr": True}, "bgr_to_rgb and rgb_to_bgr"),
        ({"mean": MEAN}, "both mean and std"),
        ({"mean": [1, 2], "std": [1, 2]}, "1 or 3 values"),
        ({"mean": MEAN, "std": [1, 0, 1]}, "non-zero"),
        ({"pad_size_divisor": 0}, "pad_size_divisor"),
        ({"pad_mask": True, "mask_pad_value": 255}, "mask_pad_value"),
        ({"pad_seg": True}, "pad_seg"),
        ({"batch_augments": [{"type": "BatchSyncRandomResize"}]}, "batch_augments"),
    ],
)
def test_unsupported_or_wrong_settings_raise_model_error(args, message):
    with pytest.raises(ModelError, match=message):
        MODELS.build({"type": "DetDataPreprocessor", **args})


def test_accepted_keys_without_effect_build():
    pre = MODELS.build(
        {
            "type": "DetDataPreprocessor",
            "boxtype2tensor": True,
            "non_blocking": True,
            "mask_pad_value": 0,
            "seg_pad_value": 255,
        }
    )
    assert isinstance(pre, DetDataPreprocessor)


def test_checkpoints_load_both_ways_with_and_without_a_preprocessor():
    torch.manual_seed(0)
    old = build_model(tiny_cfg())
    cfg = tiny_cfg()
    cfg["data_preprocessor"] = {
        "type": "DetDataPreprocessor",
        "mean": MEAN,
        "std": STD,
        "bgr_to_rgb": True,
    }
    new = build_model(cfg)
    assert isinstance(new.data_preprocessor, DetDataPreprocessor)
    assert list(new.state_dict()) == list(old.state_dict())
    new.load_state_dict(old.state_dict())  # strict: an old checkpoint loads unchanged
    old.load_state_dict(copy.deepcopy(new.state_dict()))
    assert [n for n, _ in new.named_parameters()] == [n for n, _ in old.named_parameters()]


def test_check_accepts_a_3x_data_preprocessor_and_names_a_misspelt_key(write):
    section = """
model:
  backbone: {style: caffe}
  data_preprocessor:
    type: DetDataPreprocessor
    mean: [103.53, 116.28, 123.675]
    std: [1.0, 1.0, 1.0]
    bgr_to_rgb: false
    pad_size_divisor: 32
"""
    path = write("exp.yaml", f"_base_: {TINY_MODEL}\n{section}")
    assert check_config(resolve_config(path)) == []
    typo = write("typo.yaml", f"_base_: {TINY_MODEL}\n{section}    bgr2rgb: true\n")
    found = {p.where: p.message for p in check_config(resolve_config(typo))}
    assert "bgr_to_rgb" in found["model.data_preprocessor.bgr2rgb"]
    masks = write("masks.yaml", f"_base_: {TINY_MODEL}\n{section}    mask_pad_value: 1\n")
    assert "mask_pad_value" in " ".join(p.message for p in check_config(resolve_config(masks)))

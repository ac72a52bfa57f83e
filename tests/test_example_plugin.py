"""plugins/detcli-plugin-example, pip-installed for real: listed, checked, trained; its parts unit-tested.

The CLI runs as subprocesses whose PYTHONPATH holds the installed plugin (what entry-point
discovery needs); the components are also imported in-process from that install to test
their behaviour directly on real images and tensors.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

from conftest import REPO, ShapesCoco, run_detcli

EXAMPLE = REPO / "plugins" / "detcli-plugin-example"
CONFIG = EXAMPLE / "configs" / "shapes_example.yaml"


@pytest.fixture(scope="module")
def example_env(plugin_env) -> dict[str, str]:
    """Subprocess env with the example plugin installed; one OpenMP thread (2 shared cores)."""
    return {**plugin_env(EXAMPLE), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def example(example_env, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The installed `detcli_plugin_example` package, imported in this process."""
    monkeypatch.syspath_prepend(example_env["PYTHONPATH"].split(os.pathsep)[0])
    return importlib.import_module("detcli_plugin_example")


# -- through the CLI ----------------------------------------------------------------------------


def test_plugins_lists_the_example_and_names_a_broken_plugin_next_to_it(plugin_env):
    result = run_detcli("plugins", env=plugin_env(EXAMPLE, "detcli-broken"))
    assert result.code == 0, result.err
    rows = {cells[0]: cells for cells in _table_rows(result.out)}  # plugin name -> its cells
    assert rows["example"][1:4] == ["detcli-plugin-example", "0.1.0", "ok"]
    assert "MODELS: BalancedL1Loss, TinyConvNet" in result.out
    assert "TRANSFORMS: CutOut" in result.out and "HOOKS: UpdateRatioHook" in result.out
    assert rows["broken"][1:4] == ["detcli-broken", "0.0.1", "failed"]
    assert "ModuleNotFoundError" in rows["broken"][4]
    assert "plugin broken" in result.err and "failed to load" in result.err
    assert "Traceback" not in result.out + result.err


def _table_rows(text: str) -> list[list[str]]:
    """The cells of each row of a rich table that starts a new entry (first cell not empty)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            rows.append(cells)
    return rows


def test_check_passes_and_compares_the_neck_with_the_plugin_backbones_channels(
    example_env, shapes_coco: ShapesCoco
):
    root = f"data_root={shapes_coco.root}"
    clean = run_detcli("check", str(CONFIG), "--set", root, env=example_env)
    assert clean.code == 0, clean.out + clean.err
    assert "no problems" in clean.out

    narrow = run_detcli(
        "check",
        str(CONFIG),
        "--set",
        root,
        "--set",
        "model.backbone.widths=[16,32,64,128]",
        "--set",
        "data.train.pipeline.4.n_holes=many",
        env=example_env,
    )
    assert narrow.code == 2
    out = " ".join(narrow.out.split())
    # check learnt the channels from TinyConvNet's `out_channels`, and typed CutOut's keys
    assert "model.neck.in_channels" in out
    assert "TinyConvNet backbone gives feature maps with [16, 32, 64, 128] channels" in out
    assert "data.train.pipeline.4.n_holes" in out and "2 problem(s)" in out
    assert "Traceback" not in narrow.out + narrow.err


def test_training_with_all_four_parts_writes_checkpoints_and_update_ratios(
    example_env, shapes_coco: ShapesCoco, tmp_path: Path
):
    work = tmp_path / "run"
    result = run_detcli(
        "train",
        str(CONFIG),
        "--set",
        f"data_root={shapes_coco.root}",
        "--set",
        "runner.max_epochs=1",
        "--set",
        "custom_hooks.1.warn_above=1.0e-9",  # the config's own interval (8)
        "--work-dir",
        str(work),
        env=example_env,
    )
    assert result.code == 0, result.out + result.err
    assert (work / "epoch_1.pth").is_file()

    ran = (work / "config.yaml").read_text()
    for name in ("TinyConvNet", "CutOut", "BalancedL1Loss", "UpdateRatioHook"):
        assert name in ran
    weights = torch.load(work / "epoch_1.pth", map_location="cpu", weights_only=False)
    assert "backbone.stages.3.1.0.weight" in weights["state_dict"]  # TinyConvNet's, 2 blocks

    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    ratios = [r for r in records if r["mode"] == "update_ratio"]
    assert [r["iter"] for r in ratios] == [8]  # 16 images / batch 2 = 8 iterations
    for r in ratios:
        parts = {k: v for k, v in r.items() if k not in ("mode", "epoch", "iter")}
        assert set(parts) == {"backbone", "neck", "rpn_head", "roi_head"}
        assert all(0 < v < 1 for v in parts.values()), parts
    train = [r for r in records if r["mode"] == "train"]
    assert len(train) == 8 and all(math.isfinite(r["loss_bbox"]) for r in train)
    assert any(r["loss_bbox"] > 0 for r in train)  # BalancedL1Loss saw positives
    log = (work / "train.log").read_text()
    assert "update ratio (iter 8)" in log and "learning rate may be too high" in log
    assert "update ratios every 8 iterations, first at iteration 8 (1 in this run)" in log


def test_update_ratio_hook_says_when_its_interval_is_longer_than_the_run(
    example_env, shapes_coco: ShapesCoco, tmp_path: Path
):
    work = tmp_path / "run"
    result = run_detcli(
        "train",
        str(CONFIG),
        "--set",
        f"data_root={shapes_coco.root}",
        "--set",
        "runner.max_epochs=1",
        "--set",
        "custom_hooks.1.interval=20",
        "--set",
        "evaluation=null",
        "--work-dir",
        str(work),
        env=example_env,
    )
    assert result.code == 0, result.out + result.err
    log = (work / "train.log").read_text()
    assert "interval 20 is longer than this run (8 iterations)" in log
    assert "update ratio (iter" not in log


# -- the components, in-process -----------------------------------------------------------------


def test_tiny_conv_net_reports_what_it_returns_and_freezes_stages(example):
    net = example.TinyConvNet(widths=[8, 16, 32, 64], out_indices=[1, 3], frozen_stages=1)
    feats = net(torch.rand(2, 3, 64, 96))
    assert [f.shape[1] for f in feats] == net.out_channels == [16, 64]
    assert [64 // f.shape[2] for f in feats] == [96 // f.shape[3] for f in feats] == net.strides
    assert net.strides == [8, 32]

    net.train()
    frozen = [*net.stem.parameters(), *net.stages[0].parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in net.stages[1].parameters())
    assert not net.stem[0][1].training and net.stages[1][0][1].training
    norm_eval = example.TinyConvNet(norm_eval=True).train()
    assert not any(m.training for m in norm_eval.modules() if isinstance(m, torch.nn.BatchNorm2d))

    from detcli.errors import ModelError

    with pytest.raises(ModelError, match="out_indices"):
        example.TinyConvNet(widths=[8, 16], out_indices=[0, 2])
    with pytest.raises(ModelError, match="frozen_stages"):
        example.TinyConvNet(widths=[8, 16], frozen_stages=3)
    assert example.TinyConvNet(widths=[8, 16]).out_channels == [8, 16]  # all stages by default


def _shapes_dataset(shapes: ShapesCoco, *extra):
    from detcli.data.coco import CocoDataset
    from detcli.data.transforms import LoadAnnotations, LoadImageFromFile

    loaders = [LoadImageFromFile(), LoadAnnotations(with_bbox=True)]
    return CocoDataset(
        str(shapes.train_ann),
        [*loaders, *extra],
        img_prefix=str(shapes.train_img),
        classes=list(shapes.classes),
    )


def _box_mask(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, H, W): the pixels each box covers (the shapes' boxes lie on whole pixels)."""
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    x1, y1, x2, y2 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)


def test_cutout_fills_holes_on_real_images_and_respects_boxes(example, shapes_coco):
    plain = _shapes_dataset(shapes_coco)
    fill = [124, 116, 104]
    hidden = example.CutOut(n_holes=[2, 4], cutout_ratio=[0.25, 0.25], fill_in=fill)
    kept = example.CutOut(
        n_holes=[2, 4], cutout_ratio=[[0.2, 0.2], [0.3, 0.3]], fill_in=fill, max_box_occlusion=0.2
    )
    torch.manual_seed(0)
    covered_any = False
    for cutout in (hidden, kept):
        cut = _shapes_dataset(shapes_coco, cutout)
        for i in range(len(plain)):
            before, after = plain[i], cut[i]
            assert torch.equal(after["gt_bboxes"], before["gt_bboxes"])  # nothing moves
            changed = (after["img"] != before["img"]).any(0)
            holes = after["cutout_holes"]
            assert 0 <= len(holes) <= 4 and changed.any() == bool(len(holes))
            fill_px = torch.tensor(fill, dtype=torch.uint8).view(3, 1)
            assert torch.equal(after["img"][:, changed], fill_px.expand(3, int(changed.sum())))
            h, w = changed.shape
            boxes = _box_mask(before["gt_bboxes"], h, w)
            share = (boxes & changed).flatten(1).sum(1) / boxes.flatten(1).sum(1)
            if cutout is kept:
                assert bool((share <= 0.2 + 1e-6).all()), share
            covered_any |= bool((share > 0.2).any())
    assert covered_any  # without the limit, holes do hide objects (so the limit is doing work)


def test_cutout_takes_pixel_sizes_and_rejects_bad_keys(example):
    from detcli.errors import DataError

    img = torch.full((3, 40, 60), 200, dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 0.0, 60.0, 40.0]])  # the whole image is one object
    results = example.CutOut(n_holes=3, cutout_shape=[5, 4], max_box_occlusion=0.05)(
        {"img": img, "gt_bboxes": boxes}
    )
    # 0.05 of 2400 px = 120 px: at most 6 holes of 20 px fit, so all 3 are kept
    assert len(results["cutout_holes"]) == 3 and (results["img"] == 0).any()
    assert torch.equal(img, torch.full((3, 40, 60), 200, dtype=torch.uint8))  # input untouched
    none = example.CutOut(n_holes=3, cutout_shape=[5, 4], max_box_occlusion=0.0)(
        {"img": img, "gt_bboxes": boxes}
    )
    assert len(none["cutout_holes"]) == 0 and torch.equal(none["img"], img)
    with pytest.raises(DataError, match="exactly one of cutout_shape and cutout_ratio"):
        example.CutOut(n_holes=1)
    with pytest.raises(DataError, match="max_box_occlusion"):
        example.CutOut(n_holes=1, cutout_shape=[4, 4], max_box_occlusion=2)


def test_balanced_l1_loss_shape_gradients_and_reduction(example):
    loss = example.BalancedL1Loss(alpha=0.5, gamma=1.5, beta=1.0)
    target = torch.zeros(5, 4)
    diff = torch.tensor([0.0, 0.3, 0.999999, 1.000001, 3.0]).view(5, 1).expand(5, 4).clone()
    pred = diff.requires_grad_()
    per = loss(pred, target, reduction_override="none")
    assert per.shape == (5, 4) and per[0].abs().max() == 0
    assert abs(per[2, 0].item() - per[3, 0].item()) < 1e-4  # the two pieces meet at beta
    per.sum().backward()
    grad = pred.grad[:, 0]
    assert abs(grad[3].item() - 1.5) < 1e-5 and abs(grad[4].item() - 1.5) < 1e-5  # gamma
    assert abs(grad[2].item() - 1.5) < 1e-3  # and the gradient is continuous there
    # the point of the loss: small errors get more gradient than under SmoothL1 (gradient |x|)
    assert grad[1].item() > 0.3 * 2

    weight = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]).view(5, 1).expand(5, 4)
    mean = loss(diff.detach(), target, weight=weight, avg_factor=2)
    assert torch.allclose(mean, per.detach()[:2].sum() / 2, atol=1e-5)
    empty = loss(torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4))
    assert empty.item() == 0 and empty.requires_grad

    from detcli.errors import ModelError

    with pytest.raises(ModelError, match="positive"):
        example.BalancedL1Loss(beta=0)

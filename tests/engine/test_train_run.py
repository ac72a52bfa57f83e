"""`detcli train` end to end on the tiny detector and real synthetic COCO data: what a run
leaves in its work dir (config, logs, TensorBoard events, checkpoints, evaluations)."""

from __future__ import annotations

import pytest
import torch
import yaml

from detcli.config.yaml_source import ConfigLoader
from detcli.engine.checkpoint import LATEST

from .engine_helpers import read_jsonl

LOSSES = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss")


def test_work_dir_holds_config_logs_and_evaluations(reference_run):
    wd = reference_run.work_dir
    cfg = yaml.load((wd / "config.yaml").read_text(), Loader=ConfigLoader)
    assert cfg["work_dir"] == str(wd) and cfg["seed"] == 0
    assert cfg["model"]["roi_head"]["bbox_head"]["num_classes"] == 3

    records = read_jsonl(wd / "log.jsonl")
    train = [r for r in records if r["mode"] == "train"]
    assert [r["iter"] for r in train] == [1, 2, 3, 4]  # log_config.interval 1
    assert [r["epoch"] for r in train] == [1, 1, 2, 2]
    for r in train:
        assert set(LOSSES) <= set(r) and all(r[k] > 0 for k in LOSSES)
        assert r["loss"] == pytest.approx(sum(r[k] for k in LOSSES[:-1]), rel=1e-5)
        assert r["time"] > 0 and r["data_time"] >= 0 and r["memory"] > 0 and ":" in r["eta"]
        assert r["grad_norm"] > 0  # optimizer_config.grad_clip is on
    # warm-up 3 iterations from 0.1 x 0.01, then x0.1 at epoch 1 (lr_config.step [1])
    expected = [0.01 * (1 - 0.9 * (1 - i / 3)) for i in range(3)] + [0.001]
    expected[2] *= 0.1  # iteration 3 is in epoch 2: warm-up applies to the stepped lr
    assert [r["lr"] for r in train] == pytest.approx(expected)

    val = [r for r in records if r["mode"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    assert all(
        0 <= r["bbox_mAP"] <= 1 and "bbox_AR@100" in r and "bbox_AP/circle" in r for r in val
    )
    for epoch in (1, 2):
        assert (wd / f"eval_epoch_{epoch}.json").is_file()

    out = reference_run.proc.out
    assert "Epoch [1/2][1/2]" in out and "Epoch [2/2][2/2]" in out and "loss_cls:" in out
    assert "Evaluation (epoch 1, 4 images): bbox_mAP:" in out and "trained 4 iterations" in out
    assert (wd / "train.log").read_text().count("Epoch [") == 4


def test_tensorboard_events_hold_the_losses_and_metrics(reference_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(reference_run.work_dir / "tf_logs"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "train/loss_cls", "val/bbox_mAP"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]


def test_checkpoints_rotate_link_and_load_weights_only(reference_run):
    from detcli.config import load_config
    from detcli.model_config import build_model
    from detcli.plugins import load_plugins

    wd = reference_run.work_dir
    # max_keep_ckpts: 1 keeps the newest epoch, and the one best.pth links to
    assert (wd / LATEST).resolve() == (wd / "epoch_2.pth")
    assert (wd / "best.pth").is_symlink() and (wd / "best.pth").resolve().is_file()
    assert {p.name for p in wd.glob("epoch_*.pth")} == {
        "epoch_2.pth",
        (wd / "best.pth").resolve().name,
    }
    assert not list(wd.glob("*.tmp"))  # writes are temp file + rename
    ckpt = torch.load(wd / "epoch_2.pth", weights_only=True)  # no pickled objects inside
    meta = ckpt["meta"]
    assert (meta["epoch"], meta["iter"], meta["inner_iter"]) == (2, 4, 0)
    assert meta["CLASSES"] == ["square", "circle", "triangle"]
    assert meta["config"]["optimizer"]["lr"] == 0.01 and meta["torch_version"] == torch.__version__
    assert {"optimizer", "scheduler", "rng", "state_dict"} <= set(ckpt)
    assert ckpt["scheduler"]["last_epoch"] == 4
    load_plugins()
    model = build_model(load_config(reference_run.config).model)
    model.load_state_dict(ckpt["state_dict"])  # strict: the weights are the model's
    best = torch.load(wd / "best.pth", weights_only=True)
    assert best["meta"]["hooks"]["EvalHook"]["best"] >= 0

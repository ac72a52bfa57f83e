"""Two real processes with Gloo on CPU (torchrun): DDP, sharded data, rank-0 logs and
checkpoints, evaluation sharded over ranks and gathered; and `detcli train --nproc 2`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .engine_helpers import REPO, run_process


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


WORKER = Path(__file__).with_name("dist_worker.py")
# Make the doubled-batch comparison exact up to loss normalisation: no random flips, BN
# statistics frozen, and samplers that take every anchor / proposal instead of a random subset.
COMPARABLE = """
runner: {max_epochs: 1}
model:
  backbone: {norm_eval: true}
  train_cfg:
    rpn: {sampler: {num: 100000}}
    rcnn: {sampler: {num: 100000}}
"""
NO_FLIP = "data.train.pipeline.3.flip_ratio=0.0"


def _worker(args: list[str], nproc: int) -> subprocess.CompletedProcess[str]:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    command = [sys.executable, *(launcher if nproc > 1 else []), str(WORKER), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def runs(tiny_shapes, tmp_path_factory):
    """The same start weights trained by 2 ranks x 1 image and by 1 process x 2 images."""
    from detcli.config import load_config
    from detcli.model_config import build_model
    from detcli.plugins import load_plugins

    root = tmp_path_factory.mktemp("dist")
    config = root / "cfg.yaml"
    config.write_text(
        f"_base_: {REPO}/configs/shapes/faster_rcnn_r18_fpn_shapes.yaml\ndata_root: {tiny_shapes}\n{COMPARABLE}"
    )
    load_plugins()
    torch.manual_seed(123)
    init = root / "init.pth"
    torch.save({"state_dict": build_model(load_config(config).model).state_dict()}, init)
    common = [NO_FLIP, f"load_from={init}"]
    two = _worker([str(config), str(root / "two"), "data.samples_per_gpu=1", *common], nproc=2)
    assert two.returncode == 0, two.stderr
    one = _worker([str(config), str(root / "one"), "data.samples_per_gpu=2", *common], nproc=1)
    assert one.returncode == 0, one.stderr
    return root, config, init, two


def test_both_ranks_hold_identical_weights_and_rank_0_alone_writes(runs):
    root, _, _, two = runs
    rank0 = torch.load(root / "two" / "rank0.pt")
    rank1 = torch.load(root / "two" / "rank1.pt")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # parameters and BN buffers
    saved = torch.load(root / "two" / "epoch_1.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(rank0[k], saved[k]) for k in rank0)
    assert "2 process(es)" in two.stdout
    assert (
        two.stdout.count("Epoch [1/1][1/2]") == 1
    )  # 4 images / (2 ranks x 1): 2 iterations, logged once
    assert two.stdout.count("Evaluation (epoch 1, 4 images)") == 1


def test_two_ranks_match_one_process_with_the_doubled_batch(runs):
    root, _, init, _ = runs
    start = torch.load(init)["state_dict"]
    ddp = torch.load(root / "two" / "rank0.pt")
    single = torch.load(root / "one" / "rank0.pt")
    names = [k for k, v in start.items() if v.is_floating_point() and "running_" not in k]
    step_ddp = torch.cat([(ddp[k] - start[k]).flatten() for k in names])
    step_single = torch.cat([(single[k] - start[k]).flatten() for k in names])
    assert step_single.norm() > 0
    # DDP averages the per-rank gradients; one process normalises over both images at once.
    # With every anchor/proposal sampled the two differ only by that normalisation (~0.1%).
    assert float((step_ddp - step_single).norm() / step_single.norm()) < 0.01


def test_sharded_evaluation_equals_one_process_evaluation(runs):
    from detcli.config import load_config
    from detcli.data import build_dataloader
    from detcli.engine import inference
    from detcli.evaluation import evaluate_detections
    from detcli.model_config import build_model

    root, config, _, _ = runs
    cfg = load_config(config)
    model = build_model(cfg.model)
    model.load_state_dict(torch.load(root / "two" / "epoch_1.pth", weights_only=True)["state_dict"])
    loader = build_dataloader(split_loader(cfg.data, "val"), num_workers=0)
    ours = evaluate_detections(loader.dataset, inference(model, loader))
    logged = json.loads((root / "two" / "eval_epoch_1.json").read_text())
    assert {k: round(v, 6) for k, v in ours.items() if "/" not in k} == {
        k: round(v, 6) for k, v in logged.items() if "/" not in k
    }


def test_nproc_flag_relaunches_through_torchrun(tiny_config, tmp_path):
    config = tiny_config("runner: {max_epochs: 1}\nevaluation: null\ndata: {samples_per_gpu: 1}\n")
    work = tmp_path / "w"
    result = run_process(
        "train", str(config), "--nproc", "2", "--device", "cpu", "--work-dir", str(work)
    )
    assert result.code == 0, result.err
    assert "2 process(es)" in result.out and result.out.count("Epoch [1/1][2/2]") == 1
    assert (work / "epoch_1.pth").is_file()

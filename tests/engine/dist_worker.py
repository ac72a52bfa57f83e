"""What `torchrun ... tests/engine/dist_worker.py CONFIG WORK_DIR [K=V ...]` runs in the
distributed test: `detcli.engine.train`, plus a hook that saves each rank's final weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from detcli.config import load_config
from detcli.engine import train
from detcli.engine.hooks import Hook
from detcli.registry import HOOKS


@HOOKS.register()
class SaveRankWeights(Hook):
    """After training, every rank writes `rank<r>.pt` with the weights it ends with."""

    priority = "LOWEST"

    def after_run(self, runner) -> None:
        path = runner.work_dir / f"rank{runner.dist.rank}.pt"
        torch.save(runner.raw_model.state_dict(), path)


if __name__ == "__main__":
    config, work_dir, *overrides = sys.argv[1:]
    cfg = load_config(config, overrides)
    cfg.custom_hooks = [*(cfg.get("custom_hooks") or []), {"type": "SaveRankWeights"}]
    train(cfg, work_dir=Path(work_dir), device="cpu", deterministic=True)

"""Engine overhead: iterations/s of `detcli.engine.train` against a bare hand-written loop.

Both train the same tiny Faster R-CNN (tests/fixtures/configs/tiny_train.yaml: R18-FPN64,
128 px) on the same synthetic COCO set, with the same loader, SGD, warm-up/step schedule and
gradient clipping. The engine adds its hooks (LR schedule, timer, sampler seed, text and
TensorBoard loggers every 10 iterations, NaN/Inf check, checkpoint at the end). Runs alternate
(engine, bare, engine, bare, ...) in one process; the first `--warmup` iterations of every run
are not timed. Reported: median iterations/s of each and the engine's overhead.

    python benchmarks/train_overhead.py [--iters 40] [--repeat 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "fixtures" / "configs" / "tiny_train.yaml"


def _config(data_root: Path, iters: int, device: str) -> Any:
    from detcli.config import load_config

    return load_config(
        CONFIG,
        [
            f"data_root={data_root}",
            "data.workers_per_gpu=2",
            f"runner={{_delete_: true, type: IterBasedRunner, max_iters: {iters}}}",
            "lr_config.by_epoch=false",
            f"checkpoint_config={{interval: {iters}, max_keep_ckpts: 1}}",
            "evaluation=null",
            "log_config.interval=10",
            "custom_hooks=[]",
            f"device={device}",
        ],
    )


def engine_run(cfg: Any, warmup: int, work_dir: Path) -> float:
    """Iterations/s of `detcli.engine.train`, timed by a hook after `warmup` iterations."""
    from detcli.engine import train
    from detcli.engine.hooks import Hook
    from detcli.registry import HOOKS

    marks: dict[str, float] = {}

    class _Clock(Hook):
        priority = "LOWEST"

        def after_train_iter(self, runner: Any) -> None:
            if runner.iter == warmup:
                _sync(runner.device)
                marks["start"] = time.perf_counter()

        def after_run(self, runner: Any) -> None:
            _sync(runner.device)
            marks["end"] = time.perf_counter()

    if "_Clock" in HOOKS:
        HOOKS.remove_source("benchmark")
    from detcli.registry import registering_as

    with registering_as("benchmark"):
        HOOKS.add(_Clock, name="_Clock")
    cfg.custom_hooks = [{"type": "_Clock"}]
    result = train(cfg, work_dir=work_dir, seed=0)
    HOOKS.remove_source("benchmark")
    # after_run also covers the final checkpoint write: part of the engine's cost
    return (result.iter - warmup) / (marks["end"] - marks["start"])


def bare_run(cfg: Any, warmup: int) -> float:
    """Iterations/s of the loop a user would write by hand over the same pieces."""
    from detcli.data import build_dataloader
    from detcli.plugins import load_plugins
    from detcli.registry import MODELS

    load_plugins()
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    loader = build_dataloader(cfg.data, "train", seed=0)
    model = MODELS.build(cfg.model).to(device).train()
    opt = cfg.optimizer
    optimizer = torch.optim.SGD(
        model.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    lr_cfg = cfg.lr_config

    def factor(it: int) -> float:  # step policy by iteration with linear warm-up
        f = lr_cfg.get("gamma", 0.1) ** sum(it >= s for s in lr_cfg.step)
        if it < lr_cfg.warmup_iters:
            f *= 1 - (1 - lr_cfg.warmup_ratio) * (1 - it / lr_cfg.warmup_iters)
        return f

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    total = cfg.runner.max_iters
    it, epoch = 0, 0
    start = time.perf_counter()
    while it < total:
        loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        for batch in loader:
            for key, value in batch.items():
                if isinstance(value, torch.Tensor):
                    batch[key] = value.to(device)
                elif key != "img_metas":
                    batch[key] = [x.to(device) for x in value]
            losses = model(**batch)
            loss = sum(v for k, v in losses.items() if k.startswith("loss"))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), **cfg.optimizer_config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            it += 1
            if it % 10 == 0:
                print(f"  bare: iter {it}, loss {loss.item():.4f}")
            if it == warmup:
                _sync(device)
                start = time.perf_counter()
            if it == total:
                break
        epoch += 1
    _sync(device)
    return (total - warmup) / (time.perf_counter() - start)


def _sync(device: Any) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    from detcli.data.synthetic import write_shapes_coco

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_shapes_coco(root, num_images=args.images, image_size=128, split="train")
        write_shapes_coco(root, num_images=4, image_size=128, split="val")
        engine, bare = [], []
        for r in range(args.repeat):
            engine.append(
                engine_run(_config(root, args.iters, args.device), args.warmup, root / f"w{r}")
            )
            bare.append(bare_run(_config(root, args.iters, args.device), args.warmup))
            print(f"repeat {r + 1}: engine {engine[-1]:.3f} it/s, bare loop {bare[-1]:.3f} it/s")
    e, b = statistics.median(engine), statistics.median(bare)
    print(f"\ndevice {args.device}, {args.iters} iterations ({args.warmup} untimed), batch 2")
    for name, values in (("engine (detcli train)", engine), ("bare PyTorch loop", bare)):
        shown = ", ".join(f"{x:.3f}" for x in values)
        print(f"{name:<24}{statistics.median(values):8.3f} it/s   runs: {shown}")
    print(f"engine overhead: {(b / e - 1) * 100:+.1f}% time per iteration (medians)")


if __name__ == "__main__":
    main()

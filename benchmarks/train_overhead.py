"""Engine overhead: iterations/s of `detcli.engine.train` against a bare hand-written loop.

Both train the same tiny Faster R-CNN (configs/shapes/faster_rcnn_r18_fpn_shapes.yaml: R18-FPN64,
128 px) on the same synthetic COCO set, with the same loader, SGD, warm-up/step schedule and
gradient clipping. The engine adds its hooks (LR schedule, timer, sampler seed, text and
TensorBoard loggers every 10 iterations, NaN/Inf check, checkpoint at the end). Runs alternate
(engine, bare, engine, bare, ...) in one process; the first `--warmup` iterations of every run
are not timed. Reported: median iterations/s of each, the engine's overhead, and the share of
the engine's iteration time spent inside its hooks (robust to other processes' CPU load, which
makes the A/B comparison noisy on a shared 2-core machine: run it with OMP_NUM_THREADS=1 there).

    python benchmarks/train_overhead.py [--iters 60] [--repeat 3] [--workers 0] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"


def _config(data_root: Path, iters: int, device: str, workers: int) -> Any:
    from detcli.config import load_config

    return load_config(
        CONFIG,
        [
            f"data_root={data_root}",
            f"data.workers_per_gpu={workers}",
            f"runner={{_delete_: true, type: IterBasedRunner, max_iters: {iters}}}",
            "lr_config.by_epoch=false",
            f"checkpoint_config={{interval: {iters}, max_keep_ckpts: 1}}",
            "evaluation=null",
            "log_config.interval=10",
            "custom_hooks=[]",
            f"device={device}",
        ],
    )


def engine_run(cfg: Any, warmup: int, work_dir: Path) -> tuple[float, float]:
    """(iterations/s, share of that time spent in hooks) of `detcli.engine.train`, timed
    from iteration `warmup` on. Hooks are the engine's bookkeeping: LR schedule, timer,
    sampler seed, loggers, checkpoints; measuring them inside the same iterations gives a
    ratio that CPU contention from other processes cannot skew much."""
    from detcli.engine import train
    from detcli.engine.hooks import Hook
    from detcli.engine.runner import Runner
    from detcli.registry import HOOKS, registering_as

    marks: dict[str, float] = {"hooks": 0.0}

    class _Clock(Hook):
        priority = "LOWEST"

        def after_train_iter(self, runner: Any) -> None:
            if runner.iter == warmup:
                _sync(runner.device)
                marks["start"] = time.perf_counter()
                marks["hooks"] = 0.0

        def after_run(self, runner: Any) -> None:
            _sync(runner.device)
            marks["end"] = time.perf_counter()

    original = Runner.call_hook

    def timed_call_hook(runner: Any, event: str, *args: Any) -> None:
        t = time.perf_counter()
        original(runner, event, *args)
        marks["hooks"] += time.perf_counter() - t

    with registering_as("benchmark"):
        HOOKS.add(_Clock, name="_Clock")
    cfg.custom_hooks = [{"type": "_Clock"}]
    Runner.call_hook = timed_call_hook  # type: ignore[method-assign]
    try:
        result = train(cfg, work_dir=work_dir, seed=0)
    finally:
        Runner.call_hook = original  # type: ignore[method-assign]
        HOOKS.remove_source("benchmark")
    # after_run also covers the final checkpoint write: part of the engine's cost
    elapsed = marks["end"] - marks["start"]
    return (result.iter - warmup) / elapsed, marks["hooks"] / elapsed


def bare_run(cfg: Any, warmup: int) -> float:
    """Iterations/s of the loop a user would write by hand over the same pieces."""
    from detcli.data import build_dataloader
    from detcli.model_config import build_model
    from detcli.plugins import load_plugins

    load_plugins()
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    loader = build_dataloader(split_loader(cfg.data, "train"), seed=0)
    model = build_model(cfg.model).to(device).train()
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
    parser.add_argument("--workers", type=int, default=2, help="loader workers (both loops)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    from detcli.data.synthetic import write_shapes_coco

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_shapes_coco(root, num_images=args.images, image_size=128, split="train")
        write_shapes_coco(root, num_images=4, image_size=128, split="val")
        engine, bare, in_hooks = [], [], []
        for r in range(args.repeat):
            cfg = _config(root, args.iters, args.device, args.workers)
            speed, hooks_share = engine_run(cfg, args.warmup, root / f"w{r}")
            engine.append(speed)
            in_hooks.append(hooks_share)
            cfg = _config(root, args.iters, args.device, args.workers)
            bare.append(bare_run(cfg, args.warmup))
            print(f"repeat {r + 1}: engine {engine[-1]:.3f} it/s, bare loop {bare[-1]:.3f} it/s")
    e, b = statistics.median(engine), statistics.median(bare)
    print(f"\ndevice {args.device}, {args.iters} iterations ({args.warmup} untimed), batch 2")
    for name, values in (("engine (detcli train)", engine), ("bare PyTorch loop", bare)):
        shown = ", ".join(f"{x:.3f}" for x in values)
        print(f"{name:<24}{statistics.median(values):8.3f} it/s   runs: {shown}")
    print(f"engine overhead: {(b / e - 1) * 100:+.1f}% time per iteration (medians)")
    print(
        f"time inside the engine's hooks: {statistics.median(in_hooks) * 100:.2f}% of its "
        f"iterations (median; runs: {', '.join(f'{x * 100:.2f}%' for x in in_hooks)})"
    )


if __name__ == "__main__":
    main()

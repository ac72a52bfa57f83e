"""EvalHook: evaluate on the val split every `interval` epochs (or iterations) and at the end.

Distributed runs shard the val set over all ranks and gather the detections (see
`detcli.engine.inference_loop`), so it is the same hook: DistEvalHook is another name for it.
Metrics go to the console, `log.jsonl` (`mode: val`), `eval_<epoch|iter>_<n>.json`, the
other hooks' `after_val` (TensorBoard, early stopping, best checkpoint) and `runner.metrics`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from detcli.engine.batches import dataset_of
from detcli.engine.dist import broadcast_buffers
from detcli.engine.hooks.base import Hook
from detcli.engine.hooks.best import BestCheckpoint
from detcli.engine.inference_loop import inference
from detcli.errors import ConfigError
from detcli.registry import HOOKS, METRICS, MetricCfg

if TYPE_CHECKING:
    from detcli.engine.runner import Runner
    from detcli.evaluation.coco_metric import DetectionMetric
    from detcli.structures import CocoGroundTruth


@HOOKS.register()
class EvalHook(Hook):
    """COCO bbox evaluation (or any METRICS entry) during training; `save_best` keeps best.pth.

    Runs before CheckpointHook at the end of an epoch, so the epoch's checkpoint already
    holds what the evaluation decided (best score, early-stopping counters).
    """

    priority = "ABOVE_NORMAL"

    def __init__(
        self,
        interval: int = 1,
        by_epoch: bool | None = None,
        start: int | None = None,
        metric: str | list[str] = "bbox",
        classwise: bool = True,
        save_best: str | None = None,
        rule: str | None = None,
        metric_cfg: MetricCfg | list[MetricCfg] | None = None,
        begin: int | None = None,
    ):
        if interval <= 0:
            raise ConfigError(f"evaluation.interval must be positive, got {interval}.")
        self.interval = interval
        self.by_epoch = by_epoch
        self.start = start  # 2.x (mmcv): at `start`, then every `interval` after it
        self.begin = begin  # 3.x (mmengine): every `interval`-th epoch, from `begin` on
        default = {"type": "CocoMetric", "metric": metric, "classwise": classwise}
        cfgs = metric_cfg if isinstance(metric_cfg, list) else [metric_cfg or default]
        self.metric_cfgs = list(cfgs)
        self.metrics: list[DetectionMetric] = []
        self.best = BestCheckpoint(save_best, rule, "evaluation.save_best") if save_best else None

    def before_run(self, runner: Runner) -> None:
        if self.by_epoch is None:
            self.by_epoch = runner.by_epoch
        if runner.val_loader is None:
            raise ConfigError(
                "Evaluation during training needs a `data.val` dataset; add one, or remove "
                "`evaluation` (--set evaluation=null)."
            )
        self.metrics = [
            METRICS.build(cfg) if isinstance(cfg, Mapping) else cfg for cfg in self.metric_cfgs
        ]

    def after_train_epoch(self, runner: Runner) -> None:
        if self.by_epoch and self._due(runner.epoch, runner.iter >= runner.max_iters):
            self.evaluate(runner)

    def after_train_iter(self, runner: Runner) -> None:
        if not self.by_epoch and self._due(runner.iter, runner.iter >= runner.max_iters):
            self.evaluate(runner)

    def _due(self, n: int, last: bool) -> bool:
        if self.begin is not None:
            return n >= self.begin and (n % self.interval == 0 or last)
        if self.start is not None and n < self.start:
            return False
        first = self.start if self.start is not None else 0
        return (n - first) % self.interval == 0 or last

    def evaluate(self, runner: Runner) -> dict[str, float]:
        """Evaluate the model now; return (and publish) the metrics."""
        assert runner.val_loader is not None
        broadcast_buffers(runner.raw_model)  # every shard is predicted by the same model
        runner.call_hook("before_val")
        try:
            detections = inference(
                runner.raw_model,
                runner.val_loader,
                device=runner.device,
                autocast=runner.optim_wrapper.autocast,
            )
            runner.val_outputs = detections
        finally:
            runner.model.train()
        # COCO metrics score against the val dataset's own annotations (a CocoDataset).
        dataset = cast("CocoGroundTruth", runner.val_loader.dataset)
        metrics: dict[str, float] = {}
        for metric in self.metrics:
            metrics.update(metric(dataset, detections))
        runner.metrics = metrics
        self._report(runner, metrics)
        if self.best is not None:
            self.best.update(runner, metrics)
        runner.call_hook("after_val", metrics)
        return metrics

    def _report(self, runner: Runner, metrics: dict[str, float]) -> None:
        when = f"epoch {runner.epoch}" if self.by_epoch else f"iter {runner.iter}"
        main = {k: v for k, v in metrics.items() if "/" not in k}
        per_class = {k: v for k, v in metrics.items() if "/" in k}
        images = len(dataset_of(runner.val_loader)) if runner.val_loader is not None else 0
        runner.log.info(
            f"Evaluation ({when}, {images} images): "
            + ", ".join(f"{k}: {v:.4f}" for k, v in main.items())
        )
        if per_class:
            runner.log.info(
                "  per class: " + ", ".join(f"{k}: {_num(v)}" for k, v in per_class.items())
            )
        runner.log.record({"mode": "val", "epoch": runner.epoch, "iter": runner.iter, **metrics})
        if runner.dist.is_main:
            kind, n = ("epoch", runner.epoch) if self.by_epoch else ("iter", runner.iter)
            path = runner.work_dir / f"eval_{kind}_{n}.json"
            clean = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
            path.write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")

    def state_dict(self) -> dict[str, Any]:
        return self.best.state_dict() if self.best is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.best is not None:
            self.best.load_state_dict(state)


HOOKS.add(EvalHook, name="DistEvalHook")


def _num(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"

"""Evaluation: when it runs during training, what it computes, and where results go.

2.x: `evaluation: {interval, start, by_epoch, metric, classwise, save_best, rule,
jsonfile_prefix, ...}`. 3.x: `val_evaluator` / `test_evaluator` (a METRICS component such as
`CocoMetric`, or a list of them) with `train_cfg.val_interval` / `val_begin` for the timing and
`default_hooks.checkpoint.save_best` for the best checkpoint. Evaluation during training runs
when the config asks for it (`evaluation` or `val_evaluator`) and has a val split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from detcli.config.settings.loop import LoopSettings
from detcli.config.settings.reader import Key, Section, SettingsReader
from detcli.suggest import did_you_mean

EVALUATION = Section(
    {
        "interval": Key(int),
        "by_epoch": Key(bool | None),
        "start": Key(int | None),
        "metric": Key(str | list[str]),
        "classwise": Key(bool),
        "save_best": Key(str | None),
        "rule": Key(Literal["greater", "less"] | None),
        "iou_thrs": Key(list[float] | None),
        "proposal_nums": Key(list[int]),
        "jsonfile_prefix": Key(str | None),
        "metric_items": Key(list[str] | None, "every COCO number is printed and logged"),
        "gpu_collect": Key(bool, "detcli gathers detections from every process itself"),
        "tmpdir": Key(str | None, "detcli gathers detections without temporary files"),
        "efficient_test": Key(
            bool, "masks are encoded as RLE batch by batch: none to spill to disk"
        ),
    },
    other_spelling={"val_interval": "interval", "val_begin": "start"},
)
# The 12 numbers CocoMetric reports (as `bbox_<name>`, per class `bbox_AP/<class>` and
# `bbox_AP50/<class>`); MMDetection 3.x names them `coco/bbox_<name>`.
COCO_STATS = (
    "mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l",
    "AR@1", "AR@10", "AR@100", "AR_s@100", "AR_m@100", "AR_l@100",
)  # fmt: skip
# 2.x `evaluation` keys that are arguments of the metric, and their CocoMetric names.
_METRIC_ARGS = {
    "metric": "metric",
    "classwise": "classwise",
    "iou_thrs": "iou_thrs",
    "proposal_nums": "proposal_nums",
    "jsonfile_prefix": "outfile_prefix",
}


@dataclass(frozen=True)
class EvalSettings:
    """Evaluation during training and by `detcli eval`."""

    during_training: bool = False
    interval: int = 1
    by_epoch: bool | None = None  # None: as the loop
    start: int | None = None  # 2.x: evaluate at `start`, then every `interval` after it
    begin: int | None = None  # 3.x: evaluate every `interval`-th epoch from `begin` on
    save_best: str | None = None
    rule: str | None = None
    val_metrics: list[dict[str, Any]] = field(default_factory=list)  # METRICS configs
    test_metrics: list[dict[str, Any]] = field(default_factory=list)

    def metrics_for(self, split: str) -> list[dict[str, Any]]:
        """The metrics to compute on `split` (test falls back to val's, as in MMDetection)."""
        if split == "test" and self.test_metrics:
            return self.test_metrics
        return self.val_metrics or [{"type": "CocoMetric"}]

    def outputs(self, split: str) -> tuple[bool, str | None]:
        """(format_only, outfile_prefix) the config's evaluator of `split` asks for."""
        metrics = self.metrics_for(split)
        format_only = any(bool(m.get("format_only")) for m in metrics)
        prefixes = [m["outfile_prefix"] for m in metrics if m.get("outfile_prefix")]
        return format_only, (str(prefixes[0]) if prefixes else None)


def read_evaluation(reader: SettingsReader, loop: LoopSettings, has_val: bool) -> EvalSettings:
    """Evaluation from `evaluation` (2.x) or `val_evaluator` + `train_cfg.val_*` (3.x)."""
    v2 = reader.section(("evaluation",), EVALUATION)
    reader.one_of(("evaluation", "interval"), ("train_cfg", "val_interval"))
    reader.one_of(("evaluation", "start"), ("train_cfg", "val_begin"))
    reader.one_of(("evaluation", "metric"), ("val_evaluator",))
    reader.one_of(("evaluation", "save_best"), ("default_hooks", "checkpoint", "save_best"))
    val = _evaluators(reader, "val_evaluator")
    test = _evaluators(reader, "test_evaluator")
    if not val and v2:
        metric = {"type": "CocoMetric"}
        metric.update({new: v2[old] for old, new in _METRIC_ARGS.items() if old in v2})
        val = [metric]
    wanted = reader.has(("evaluation",)) or reader.has(("val_evaluator",))
    if wanted and not has_val:
        where = "evaluation" if reader.has(("evaluation",)) else "val_evaluator"
        reader.problem(
            (where,),
            f"`{where}` asks for evaluation during training, but the config has no val split "
            "(data.val or val_dataloader); add one, or set it to null.",
        )
    interval = v2.get("interval", loop.val_interval or 1)
    interval = reader.positive_int(
        ("evaluation", "interval") if "interval" in v2 else ("train_cfg", "val_interval"), interval
    )
    _check_save_best(reader, val)
    return EvalSettings(
        during_training=wanted and has_val,
        interval=interval or 1,
        by_epoch=v2.get("by_epoch"),
        start=v2.get("start"),
        begin=loop.val_begin,
        save_best=v2.get("save_best"),
        rule=v2.get("rule"),
        val_metrics=val,
        test_metrics=test,
    )


def _evaluators(reader: SettingsReader, key: str) -> list[dict[str, Any]]:
    value = reader.get((key,), None)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    good = []
    for i, item in enumerate(items):
        path = (key, i) if isinstance(value, list) else (key,)
        if not isinstance(item, dict) or "type" not in item:
            reader.problem(
                path, f"{key} must be a metric such as {{type: CocoMetric}} (or a list)."
            )
            continue
        good.append(dict(item))
    return good


def _check_save_best(reader: SettingsReader, metrics: list[dict[str, Any]]) -> None:
    """`save_best` must name a number the evaluation produces (else it fails after epoch 1)."""
    if any(m.get("type") != "CocoMetric" for m in metrics):
        return  # a plugin metric: its names are known only once it runs
    kinds = ["bbox"]
    for m in metrics:
        wanted = m.get("metric", "bbox")
        if "segm" in (wanted if isinstance(wanted, list) else [wanted]):
            kinds.append("segm")
    names = [f"{kind}_{n}" for kind in kinds for n in COCO_STATS]
    per_class = tuple(f"{kind}_{stat}/" for kind in kinds for stat in ("AP", "AP50"))
    for path in (
        ("evaluation", "save_best"),
        ("checkpoint_config", "save_best"),
        ("default_hooks", "checkpoint", "save_best"),
    ):
        key = reader.get(path, None)
        if not isinstance(key, str) or key == "auto":
            continue
        bare = key.removeprefix("coco/")
        if bare in names or bare.startswith(per_class):
            continue
        reader.problem(
            path,
            f"save_best {key!r} is not a number the evaluation reports."
            f"{did_you_mean(bare, names)} It reports: {', '.join(names)} (or `auto`: the first).",
        )

"""The training loop: how long it runs and when it validates.

2.x: `runner: {type: EpochBasedRunner | IterBasedRunner, max_epochs | max_iters}`,
`workflow`, `evaluation.interval/start`. 3.x (mmengine): top-level `train_cfg: {type:
EpochBasedTrainLoop | IterBasedTrainLoop, max_epochs | max_iters, val_interval, val_begin}`,
`val_cfg: {type: ValLoop}`, `test_cfg: {type: TestLoop}`.

The top-level `train_cfg` / `test_cfg` names are older than mmengine: MMDetection 1.x and early
2.x configs kept the RPN/R-CNN settings there. Which one a config means is decided by content:
a mapping with `rpn`, `rpn_proposal` or `rcnn` holds model settings (see `model_cfg`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from detcli.config.settings.reader import Key, Section, SettingsReader

MODEL_SECTIONS = ("rpn", "rpn_proposal", "rcnn")
EPOCH_LOOPS = ("EpochBasedRunner", "EpochBasedTrainLoop")
ITER_LOOPS = ("IterBasedRunner", "IterBasedTrainLoop")

RUNNER = Section(
    {
        "type": Key(Literal["EpochBasedRunner", "IterBasedRunner"]),
        "max_epochs": Key(int),
        "max_iters": Key(int),
        "max_time": Key(float | str | None),
    },
    other_spelling={"val_interval": "evaluation.interval", "val_begin": "evaluation.start"},
)
TRAIN_LOOP = Section(
    {
        "type": Key(Literal["EpochBasedTrainLoop", "IterBasedTrainLoop"]),
        "max_epochs": Key(int),
        "max_iters": Key(int),
        "val_interval": Key(int),
        "val_begin": Key(int),
        "max_time": Key(float | str | None),
    },
    other_spelling={"max_epoch": "max_epochs", "max_iter": "max_iters"},
)
VAL_LOOP = Section(
    {
        "type": Key(Literal["ValLoop", "TestLoop"]),
        "fp16": Key(bool, "use `detcli eval --fp16` (or --bf16) for reduced precision"),
    }
)


@dataclass(frozen=True)
class LoopSettings:
    """How long training runs: epochs (`by_epoch`) or iterations, and a wall-clock cap."""

    by_epoch: bool = True
    max_epochs: int = 12
    max_iters: int = 0  # iteration-based runs only
    max_time: float | None = None  # seconds
    val_interval: int | None = None  # 3.x `train_cfg.val_interval`
    val_begin: int | None = None  # 3.x `train_cfg.val_begin`
    has_val_loop: bool = False  # 3.x `val_cfg` is set


def holds_model_settings(value: Any) -> bool:
    """True when a top-level `train_cfg`/`test_cfg` is the old home of RPN/R-CNN settings."""
    return isinstance(value, dict) and any(k in value for k in MODEL_SECTIONS)


def read_loop(reader: SettingsReader) -> LoopSettings:
    """The loop from `runner` (2.x) or `train_cfg` (3.x); both is an error."""
    runner = reader.section(("runner",), RUNNER)
    loop_cfg = reader.get(("train_cfg",), None)
    loop: dict[str, Any] = {}
    if loop_cfg is not None and not holds_model_settings(loop_cfg):
        loop = reader.section(("train_cfg",), TRAIN_LOOP)
    if not holds_model_settings(reader.get(("test_cfg",), None)):
        reader.section(("test_cfg",), VAL_LOOP)
    reader.section(("val_cfg",), VAL_LOOP)
    _workflow(reader)
    for key in ("max_epochs", "max_iters", "max_time"):
        reader.one_of(("runner", key), ("train_cfg", key))
    if runner.get("type") and loop.get("type"):
        reader.one_of(("runner", "type"), ("train_cfg", "type"))

    kind = loop.get("type") or runner.get("type")
    merged = {**runner, **loop}
    if kind is None:  # mmengine infers the loop from the key given
        kind = "IterBasedRunner" if "max_iters" in merged and "max_epochs" not in merged else ""
    by_epoch = kind not in ITER_LOOPS
    key = "max_epochs" if by_epoch else "max_iters"
    section = "train_cfg" if (loop and key in loop) or (loop and not runner) else "runner"
    length = merged.get(key, 12 if by_epoch and not (runner or loop) else None)
    if length is None:
        reader.problem(
            (section,),
            f"{section} needs {key} (a positive integer) for a "
            f"{'epoch' if by_epoch else 'iteration'}-based run.",
        )
        length = 1
    value = reader.positive_int((section, key), length) or 1
    other = "max_iters" if by_epoch else "max_epochs"
    if other in merged:
        reader.note(
            (section, other),
            f"accepted, no effect in detcli: a {'n epoch' if by_epoch else 'n iteration'}-based "
            f"loop runs for {key}.",
        )
    val_interval = loop.get("val_interval")
    val_begin = loop.get("val_begin")
    if val_interval is not None:
        reader.positive_int(("train_cfg", "val_interval"), val_interval)
    return LoopSettings(
        by_epoch=by_epoch,
        max_epochs=value if by_epoch else 0,
        max_iters=value if not by_epoch else 0,
        max_time=_max_time(reader, merged.get("max_time"), section),
        val_interval=val_interval,
        val_begin=val_begin,
        has_val_loop=reader.has(("val_cfg",)),
    )


def _workflow(reader: SettingsReader) -> None:
    workflow = reader.get(("workflow",), None)
    if workflow is None:
        return
    ok = isinstance(workflow, list) and all(
        isinstance(s, list) and len(s) == 2 and s[0] in ("train", "val") for s in workflow
    )
    if not ok or any(step[0] != "train" for step in workflow):
        reader.problem(
            ("workflow",),
            "workflow: only [[train, 1]] is supported; validation runs through `evaluation` "
            "(interval) or `train_cfg.val_interval`.",
        )


def _max_time(reader: SettingsReader, value: Any, section: str) -> float | None:
    """`max_time`: seconds, or "[DD:]HH:MM:SS"."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"(\d+:){1,3}\d+", value):
        seconds = 0.0
        for part, unit in zip(reversed(value.split(":")), (1, 60, 3600, 86400), strict=False):
            seconds += int(part) * unit
        return seconds
    reader.problem(
        (section, "max_time"),
        f"{section}.max_time must be a positive number of seconds or 'HH:MM:SS', got {value!r}.",
    )
    return None

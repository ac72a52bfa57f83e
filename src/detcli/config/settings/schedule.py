"""The LR schedule: `lr_config` (2.x policies with warm-up) or `param_scheduler` (3.x rules)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from detcli.config.settings.reader import Key, Section, SettingsReader

# `lr_config.policy` values (detcli.engine.lr_policies; mmcv title-cases lower-case names).
LrPolicy = Literal[
    "step", "Step", "fixed", "Fixed", "exp", "Exp", "inv", "Inv", "poly", "Poly",
    "CosineAnnealing", "cosine",
]  # fmt: skip
# The keys every policy shares; the engine checks each policy's own (step, gamma, power...).
LR_CONFIG = Section(
    {
        "policy": Key(LrPolicy),
        "by_epoch": Key(bool),
        "warmup": Key(Literal["linear", "constant", "exp"] | None),
        "warmup_iters": Key(int),
        "warmup_ratio": Key(float),
        "warmup_by_epoch": Key(bool),
        "step": Key(int | list[int]),
        "gamma": Key(float),
        "min_lr": Key(float | None),
        "min_lr_ratio": Key(float | None),
        "power": Key(float),
    }
)


@dataclass(frozen=True)
class ScheduleSettings:
    """One of the two spellings (neither: a constant LR); the engine turns it into rules."""

    lr_config: dict[str, Any] | None = None
    param_scheduler: list[dict[str, Any]] = field(default_factory=list)


def read_schedule(reader: SettingsReader) -> ScheduleSettings:
    """`lr_config` or `param_scheduler`; both set is ambiguous and an error."""
    found = reader.one_of(("lr_config",), ("param_scheduler",))
    if found is None:
        return ScheduleSettings()
    path, value = found
    if path == ("lr_config",):
        reader.section(path, LR_CONFIG)
        if not isinstance(value, dict):
            reader.problem(path, "lr_config must be a mapping with a `policy`.")
            return ScheduleSettings()
        return ScheduleSettings(lr_config=copy.deepcopy(value))
    entries = value if isinstance(value, list) else [value]
    good = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "type" not in entry:
            reader.problem((*path, i), "each param_scheduler entry needs a `type` (e.g. LinearLR).")
            continue
        if entry.get("param_name", "lr") != "lr":
            reader.problem(
                (*path, i, "param_name"),
                "only LR schedules are supported (param_name: lr); momentum schedules are not.",
            )
        good.append(copy.deepcopy(entry))
    return ScheduleSettings(param_scheduler=good)

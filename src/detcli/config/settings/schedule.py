"""The LR schedule: `lr_config` (2.x policies with warm-up) or `param_scheduler` (3.x rules)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from detcli.config.origins import ConfigPath
from detcli.config.settings.loop import LoopSettings
from detcli.config.settings.reader import Key, Section, SettingsReader
from detcli.errors import ConfigError

# Longest run simulated for the "never reaches the base LR" warning (iterations).
MAX_SIMULATED_ITERS = 300_000

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
        _policy_keys(reader, value)
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


def _policy_keys(reader: SettingsReader, lr_config: dict[str, Any]) -> None:
    """Keys the chosen policy does not take (`step` under CosineAnnealing): the engine's table."""
    # Torch-free module: the same per-policy table the engine validates with.
    from detcli.engine.lr_policies import policy_key_message, policy_keys

    policy = lr_config.get("policy")
    accepted = policy_keys(policy) if isinstance(policy, str) else None
    if accepted is None or not isinstance(policy, str):
        return  # an unknown policy is reported by the section's type check
    for key in lr_config:
        if key != "policy" and key in LR_CONFIG.keys and key not in accepted:
            reader.problem(("lr_config", key), policy_key_message(policy, key))


def schedule_warnings(
    schedule: ScheduleSettings, loop: LoopSettings, iters_per_epoch: int | None
) -> list[tuple[ConfigPath, str]]:
    """Schedules that do not do what they say: a warm-up longer than the run, a step after the
    last epoch, an LR that never reaches the optimizer's `lr`. `iters_per_epoch` None: unknown
    (only what epochs tell is checked)."""
    found = _milestones_after_end(schedule, loop)
    total = _total_iters(loop, iters_per_epoch)
    if total is None or iters_per_epoch is None:
        return found + _warmup_epochs_after_end(schedule, loop)
    run = _describe_run(loop, iters_per_epoch, total)
    warmup = _warmup_iters(schedule, iters_per_epoch)
    if warmup is not None and warmup[1] >= total:
        path, iters = warmup
        found.append(
            (
                path,
                f"the warm-up lasts {iters} iterations but the run has {run}: the LR is still "
                "rising when training stops. Shorten the warm-up (a few percent of the run) or "
                "train longer.",
            )
        )
        return found  # the LR never reaching its base is the same finding
    peak = _peak_factor(schedule, iters_per_epoch, total)
    if peak is not None and peak < 0.999:
        path = ("lr_config",) if schedule.lr_config else ("param_scheduler",)
        found.append(
            (
                path,
                f"the LR never reaches the optimizer's lr: at most {peak:.3g} x lr in {run} "
                "(a decay starts before the warm-up ends). Move the decay later or shorten "
                "the warm-up.",
            )
        )
    return found


def _warmup_epochs_after_end(
    schedule: ScheduleSettings, loop: LoopSettings
) -> list[tuple[ConfigPath, str]]:
    """Without iterations per epoch: a warm-up counted in epochs can still outlast the run."""
    lr_config = schedule.lr_config or {}
    epochs = lr_config.get("warmup_iters")
    if not (lr_config.get("warmup") and lr_config.get("warmup_by_epoch") and loop.by_epoch):
        return []
    if not isinstance(epochs, int) or epochs < loop.max_epochs:
        return []
    return [
        (
            ("lr_config", "warmup_iters"),
            f"the warm-up lasts {epochs} epoch(s) (warmup_by_epoch) but the run has "
            f"{loop.max_epochs}: the LR is still rising when training stops.",
        )
    ]


def _total_iters(loop: LoopSettings, iters_per_epoch: int | None) -> int | None:
    if not loop.by_epoch:
        return loop.max_iters or None
    return loop.max_epochs * iters_per_epoch if iters_per_epoch else None


def _describe_run(loop: LoopSettings, iters_per_epoch: int, total: int) -> str:
    if not loop.by_epoch:
        return f"{total} iterations"
    return f"{total} iterations ({loop.max_epochs} epoch(s) x {iters_per_epoch} per epoch)"


def _warmup_iters(
    schedule: ScheduleSettings, iters_per_epoch: int
) -> tuple[ConfigPath, int] | None:
    """Where the warm-up's length is set and how many iterations it lasts."""
    lr_config = schedule.lr_config
    if lr_config and lr_config.get("warmup") and isinstance(lr_config.get("warmup_iters"), int):
        iters = lr_config["warmup_iters"]
        if lr_config.get("warmup_by_epoch"):
            iters *= iters_per_epoch
        return ("lr_config", "warmup_iters"), iters
    for i, entry in enumerate(schedule.param_scheduler):
        if entry.get("type") == "LinearLR" and isinstance(entry.get("end"), int):
            end = entry["end"]
            if entry.get("by_epoch", True):
                end *= iters_per_epoch
            if entry.get("start_factor", 1 / 3) < 1:
                return ("param_scheduler", i, "end"), end
    return None


def _milestones_after_end(
    schedule: ScheduleSettings, loop: LoopSettings
) -> list[tuple[ConfigPath, str]]:
    """Step milestones (epochs, counted from 0) that the run's last epoch never reaches."""
    if not loop.by_epoch:
        return []
    steps: list[tuple[ConfigPath, Any]] = []
    lr_config = schedule.lr_config or {}
    if str(lr_config.get("policy", "")).lower() == "step" and lr_config.get("by_epoch", True):
        steps.append((("lr_config", "step"), lr_config.get("step")))
    for i, entry in enumerate(schedule.param_scheduler):
        if entry.get("type") == "MultiStepLR" and entry.get("by_epoch", True):
            steps.append((("param_scheduler", i, "milestones"), entry.get("milestones")))
    found = []
    for path, value in steps:
        if not isinstance(value, list):
            continue
        late = [m for m in value if isinstance(m, int) and m >= loop.max_epochs]
        if late:
            found.append(
                (
                    path,
                    f"step(s) at epoch {', '.join(map(str, late))} never happen: the run stops "
                    f"after {loop.max_epochs} epoch(s), so the LR does not decay there. Put the "
                    f"steps before epoch {loop.max_epochs} (e.g. near the end of the run).",
                )
            )
    return found


def _peak_factor(schedule: ScheduleSettings, iters_per_epoch: int, total: int) -> float | None:
    """The highest LR factor over the run (1: the base LR is reached), by the engine's rules."""
    # Torch-free modules: the engine's own formulas, so the warning cannot drift from training.
    from detcli.engine.lr_policies import lr_config_rules
    from detcli.engine.param_schedulers import Progress
    from detcli.registry import SCHEDULERS

    if total > MAX_SIMULATED_ITERS:
        return None
    try:
        if schedule.param_scheduler:
            rules = [
                SCHEDULERS.build({k: v for k, v in e.items() if k != "param_name"})
                for e in schedule.param_scheduler
            ]
        elif schedule.lr_config:
            rules = lr_config_rules(schedule.lr_config, iters_per_epoch)
        else:
            return None
        progress = Progress(iters_per_epoch, total)
        peak = 0.0
        for it in range(total):
            factor = 1.0
            for rule in rules:
                factor *= rule.factor(1.0, it, progress)
            peak = max(peak, factor)
            if peak >= 0.999:
                break
    except (ConfigError, TypeError, ValueError, ZeroDivisionError):
        return None  # an invalid schedule is reported as a problem elsewhere
    return peak

"""Hooks: code the runner calls at fixed points of training, ordered by priority.

A hook overrides any of the event methods below. Hooks run in ascending priority
(0 = highest runs first; mmcv's names: HIGHEST 0 ... NORMAL 50 ... LOWEST 100); hooks of
equal priority run in the order they were registered. A hook with state that must survive a
resume returns it from `state_dict()` (tensors and plain values only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

from detcli.errors import ConfigError

if TYPE_CHECKING:
    from detcli.engine.runner import Runner

PRIORITIES = {
    "HIGHEST": 0,
    "VERY_HIGH": 10,
    "HIGH": 30,
    "ABOVE_NORMAL": 40,
    "NORMAL": 50,
    "BELOW_NORMAL": 60,
    "LOW": 70,
    "VERY_LOW": 90,
    "LOWEST": 100,
}

HookEvent = Literal[
    "before_run",
    "before_train_epoch",
    "before_train_iter",
    "after_train_iter",
    "after_train_epoch",
    "before_val",
    "after_val",
    "before_save_checkpoint",
    "after_load_checkpoint",
    "after_run",
]
EVENTS: tuple[HookEvent, ...] = get_args(HookEvent)  # the points the runner calls hooks at


def priority_value(priority: int | str) -> int:
    """A priority given as a number or a name (`NORMAL`, `very_low`)."""
    if isinstance(priority, int) and not isinstance(priority, bool):
        if not 0 <= priority <= 100:
            raise ConfigError(f"A hook priority must be in 0..100, got {priority}.")
        return priority
    if isinstance(priority, str) and priority.upper() in PRIORITIES:
        return PRIORITIES[priority.upper()]
    raise ConfigError(
        f"Unknown hook priority {priority!r}; use a number 0..100 or one of "
        f"{', '.join(PRIORITIES)}."
    )


class Hook:
    """Base class: every event is a no-op; subclasses override the ones they need."""

    priority: int | str = "NORMAL"  # the default when the config gives none

    def before_run(self, runner: Runner) -> None:
        """Once, after everything is built (and resumed), before the first iteration."""

    def before_train_epoch(self, runner: Runner) -> None:
        """Before each pass over the training data."""

    def before_train_iter(self, runner: Runner) -> None:
        """After the batch is loaded, before the forward pass."""

    def after_train_iter(self, runner: Runner) -> None:
        """After the optimizer step; `runner.iter` still counts the finished iteration."""

    def after_train_epoch(self, runner: Runner) -> None:
        """After each full pass; `runner.epoch` still counts the finished epoch."""

    def before_val(self, runner: Runner) -> None:
        """Before the model is evaluated."""

    def after_val(self, runner: Runner, metrics: dict[str, float]) -> None:
        """After an evaluation, with its metrics."""

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        """The checkpoint dict about to be written; hooks may add to it."""

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        """After a resume loaded `checkpoint` into the model, optimizer and scheduler."""

    def after_run(self, runner: Runner) -> None:
        """Once at the end, also when training stops with an error (release resources)."""

    def state_dict(self) -> dict[str, Any]:
        """State to keep in checkpoints (empty: nothing to keep)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

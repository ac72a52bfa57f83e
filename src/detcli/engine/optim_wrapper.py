"""The optimizer wrapper: backward, gradient clipping, mixed precision and the step, in one place.

Built from `OptimSettings` (detcli.config.settings.optim), which reads both spellings:
`optimizer` / `optimizer_config` / `fp16` (2.x) and `optim_wrapper` (3.x).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from detcli.config.settings import OptimSettings
from detcli.engine.optimizers import build_optimizer
from detcli.errors import ConfigError


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision: autocast dtype and (float16 only) the gradient scaler's loss scale."""

    dtype: torch.dtype
    loss_scale: float | str = "dynamic"  # "dynamic" or a fixed scale


class OptimWrapper:
    """Steps the optimizer for a loss: autocast, (scaled) backward, clip, step, zero_grad.

    With `accumulative_counts: N` (mmengine's gradient accumulation) each loss is divided by
    N and back-propagated, and the clip + step + zero_grad happen every N-th call only, so N
    iterations of batch B update like one of batch N x B. `initialize_count_status` aligns
    the windows with the run (and shortens the last one when max_iters is not a multiple of N).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        clip_grad: Mapping[str, Any] | None = None,
        amp: AmpSettings | None = None,
        device_type: str = "cpu",
        accumulative_counts: int = 1,
    ):
        if (
            not isinstance(accumulative_counts, int)
            or isinstance(accumulative_counts, bool)
            or accumulative_counts < 1
        ):
            raise ConfigError(
                "optim_wrapper.accumulative_counts must be a positive integer (the number of "
                f"iterations whose gradients add up to one step), got {accumulative_counts!r}."
            )
        self.optimizer = optimizer
        self.clip_grad = dict(clip_grad) if clip_grad else None
        self.amp = amp
        self.device_type = device_type
        self.accumulative_counts = accumulative_counts
        self._inner_count = 0  # backward passes so far (the runner's iteration count)
        self._max_counts = -1  # -1: the run's length is unknown, every window is N long
        self._remainder_counts = 0
        self.scaler: torch.amp.GradScaler | None = None
        if amp is not None and amp.dtype == torch.float16:
            # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
            # A number (mmdet's `loss_scale: 512.`) is a scale that never grows; like the
            # dynamic one it halves (and skips the step) when gradients overflow.
            fixed = not isinstance(amp.loss_scale, str)
            self.scaler = torch.amp.GradScaler(
                device_type,
                init_scale=float(amp.loss_scale) if fixed else 2.0**16,
                growth_interval=2**31 - 1 if fixed else 2000,
            )

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def inner_count(self) -> int:
        """Backward passes counted so far (equals the runner's iteration)."""
        return self._inner_count

    def initialize_count_status(self, init_counts: int, max_counts: int) -> None:
        """Start counting at iteration `init_counts` of `max_counts` (the run's start or resume).

        As mmengine's: without it a run whose length is not a multiple of N would end with
        gradients that never step; with it the last window steps at `max_counts` and its
        losses are divided by the window's real length.
        """
        self._inner_count = init_counts
        self._max_counts = max_counts
        self._remainder_counts = max_counts % self.accumulative_counts

    def should_update(self) -> bool:
        """Whether the backward pass just counted closes a window (clip, step, zero_grad)."""
        n = self._inner_count
        return n % self.accumulative_counts == 0 or n == self._max_counts

    def should_sync(self) -> bool:
        """Whether the next backward pass closes a window (DDP must all-reduce it)."""
        n = self._inner_count + 1
        return n % self.accumulative_counts == 0 or n == self._max_counts

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass's precision context (a no-op without AMP)."""
        if self.amp is None:
            yield
            return
        with torch.autocast(self.device_type, dtype=self.amp.dtype):
            yield

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """The training forward's context: autocast and, inside a window, DDP's `no_sync`.

        Gradients only need the all-reduce on the iteration that steps; DDP decides that in
        the forward pass, so the forward runs in this context (the backward may follow it).
        """
        no_sync = getattr(model, "no_sync", None)
        skip = no_sync is not None and not self.should_sync()
        with no_sync() if skip else contextlib.nullcontext(), self.autocast():  # type: ignore[misc]
            yield

    def update(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backward `loss`; at a window's end clip, step and zero the gradients.

        Returns tensors to log (`grad_norm`, `loss_scale`: only on iterations that step).
        """
        loss = loss / self._loss_factor()
        # torch.autograd.backward is Tensor.backward's typed spelling.
        torch.autograd.backward(self.scaler.scale(loss) if self.scaler is not None else loss)
        self._inner_count += 1
        if not self.should_update():
            return {}
        logs: dict[str, torch.Tensor] = {}
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
        if self.clip_grad is not None:
            params = [p for p in self._params() if p.grad is not None]
            if params:
                logs["grad_norm"] = nn.utils.clip_grad_norm_(params, **self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            logs["loss_scale"] = torch.tensor(self.scaler.get_scale())
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return logs

    def _loss_factor(self) -> int:
        """N, or the shorter length of the run's last window (mmengine's `scale_loss`)."""
        n = self.accumulative_counts
        if n == 1 or self._max_counts < 0 or self._remainder_counts == 0:
            return n
        last_window_start = self._max_counts - self._remainder_counts
        return n if self._inner_count < last_window_start else self._remainder_counts

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state, with float16 AMP the scaler's, and a window's pending gradients.

        A checkpoint written inside an accumulation window (e.g. at an epoch end that is not a
        multiple of N) keeps the gradients summed so far, so a resume steps exactly as the
        uninterrupted run would have.
        """
        state: dict[str, Any] = {"optimizer": self.optimizer.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.accumulative_counts > 1:
            pending = [None if p.grad is None else p.grad.detach().clone() for p in self._params()]
            state["accumulation"] = {
                "inner_count": self._inner_count,
                "grads": pending if any(g is not None for g in pending) else None,
            }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (a checkpoint dict holding its keys will do)."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        accumulation = state.get("accumulation")
        if accumulation and self.accumulative_counts > 1:
            self._inner_count = int(accumulation["inner_count"])
            grads = accumulation.get("grads")
            params = self._params()
            if grads is not None and len(grads) == len(params):
                for param, grad in zip(params, grads, strict=True):
                    param.grad = None if grad is None else grad.to(param.device, param.dtype)


def build_optim_wrapper(
    model: nn.Module, settings: OptimSettings, *, amp: bool | None, device_type: str
) -> OptimWrapper:
    """The wrapper for `settings`; `amp` (the --amp flag) overrides the config when not None."""
    optimizer = build_optimizer(
        model, settings.optimizer, settings.paramwise_cfg, where=settings.where
    )
    use_amp = settings.amp if amp is None else amp
    amp_settings = None
    if use_amp:
        amp_settings = AmpSettings(_amp_dtype(settings.amp_dtype, device_type), settings.loss_scale)
    return OptimWrapper(
        optimizer,
        clip_grad=settings.clip_grad,
        amp=amp_settings,
        device_type=device_type,
        accumulative_counts=settings.accumulative_counts,
    )


def _amp_dtype(name: str | None, device_type: str) -> torch.dtype:
    """float16 + a scaler on CUDA, bfloat16 on CPU (CPU autocast has no fast float16)."""
    if name is None:
        return torch.float16 if device_type == "cuda" else torch.bfloat16
    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16}
    if name not in dtypes:
        raise ConfigError(f"optim_wrapper.dtype must be float16 or bfloat16, got {name!r}.")
    return dtypes[name]

"""The optimizer, its wrapper (clipping, mixed precision, accumulation) and LR auto-scaling.

2.x: `optimizer` (with `paramwise_cfg` inside), `optimizer_config: {grad_clip}`, `fp16:
{loss_scale}`. 3.x: `optim_wrapper: {type: OptimWrapper | AmpOptimWrapper, optimizer,
clip_grad, paramwise_cfg, accumulative_counts, loss_scale, dtype}`. Both: `auto_scale_lr:
{enable, base_batch_size}`, which scales the LR by (processes x the train split's batch size) /
base_batch_size; the batch size is `LoaderSettings.batch_size`, never read again here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Literal

from detcli.config.origins import ConfigPath
from detcli.config.settings.reader import Key, Section, SettingsReader

PARAMWISE = Section(
    {
        "custom_keys": Key(dict[str, dict[str, float]]),
        "norm_decay_mult": Key(float),
        "bias_decay_mult": Key(float),
        "bias_lr_mult": Key(float),
        "dwconv_decay_mult": Key(float),
        "flat_decay_mult": Key(float),
        "bypass_duplicate": Key(bool),
        "dcn_offset_lr_mult": Key(float, "detcli has no deformable convolutions"),
    }
)
CLIP = Section(
    {"max_norm": Key(float), "norm_type": Key(float), "error_if_nonfinite": Key(bool)},
    other_spelling={"type": "max_norm/norm_type (detcli clips by norm)"},
)
OPTIM_WRAPPER = Section(
    {
        "type": Key(Literal["OptimWrapper", "AmpOptimWrapper"]),
        "optimizer": Key(dict[str, Any] | None),
        "clip_grad": Key(dict[str, Any] | None),
        "paramwise_cfg": Key(dict[str, Any] | None),
        "accumulative_counts": Key(int),
        "loss_scale": Key(float | Literal["dynamic"]),
        "dtype": Key(Literal["float16", "bfloat16"] | None),
        "constructor": Key(Literal["DefaultOptimWrapperConstructor"] | None),
    },
    other_spelling={"grad_clip": "clip_grad", "cumulative_iters": "accumulative_counts"},
)
OPTIMIZER_CONFIG = Section(
    {
        "type": Key(
            Literal["OptimizerHook", "Fp16OptimizerHook", "GradientCumulativeOptimizerHook"]
        ),
        "grad_clip": Key(dict[str, Any] | None),
        "cumulative_iters": Key(int),
        "loss_scale": Key(float | Literal["dynamic"]),
    },
    other_spelling={"clip_grad": "grad_clip"},
)
FP16 = Section({"loss_scale": Key(float | Literal["dynamic"])})
AUTO_SCALE_LR = Section({"enable": Key(bool), "base_batch_size": Key(int)})


@dataclass(frozen=True)
class OptimSettings:
    """The optimizer-related parts of a config, whichever spelling it used."""

    optimizer: dict[str, Any]
    paramwise_cfg: dict[str, Any] | None = None
    clip_grad: dict[str, Any] | None = None
    amp: bool = False
    amp_dtype: str | None = None
    loss_scale: float | str = "dynamic"
    accumulative_counts: int = 1
    where: str = "optimizer"  # config key of the optimizer, for messages
    auto_scale_lr: bool = False
    base_batch_size: int = 16

    def scaled(self, total_batch: int) -> tuple[OptimSettings, str | None]:
        """With `auto_scale_lr` on: settings whose LR is scaled to `total_batch`, and a log line."""
        if not self.auto_scale_lr:
            return self, None
        old = float(self.optimizer["lr"])
        new = old * total_batch / self.base_batch_size
        line = (
            f"auto_scale_lr: lr {old:g} x {total_batch} (total batch) / {self.base_batch_size} "
            f"(base_batch_size) = {new:g}"
        )
        return replace(self, optimizer={**self.optimizer, "lr": new}), line


def read_optim(reader: SettingsReader) -> OptimSettings | None:
    """`optimizer`/`optimizer_config`/`fp16` or `optim_wrapper`; None when neither is set."""
    wrapper = reader.section(("optim_wrapper",), OPTIM_WRAPPER)
    opt_cfg = reader.section(("optimizer_config",), OPTIMIZER_CONFIG)
    fp16 = reader.section(("fp16",), FP16)
    scale = reader.section(("auto_scale_lr",), AUTO_SCALE_LR)
    paramwise_paths: tuple[ConfigPath, ...] = (
        ("optim_wrapper", "paramwise_cfg"),
        ("optimizer", "paramwise_cfg"),
    )
    for path in paramwise_paths:
        reader.section(path, PARAMWISE)
    clip_paths: tuple[ConfigPath, ...] = (
        ("optim_wrapper", "clip_grad"),
        ("optimizer_config", "grad_clip"),
    )
    for path in clip_paths:
        if reader.has(path) and "max_norm" not in reader.section(path, CLIP):
            reader.problem(
                path, "gradient clipping needs max_norm (e.g. {max_norm: 35, norm_type: 2})."
            )
    found = reader.one_of(("optimizer",), ("optim_wrapper", "optimizer"))
    clip = reader.one_of(("optimizer_config", "grad_clip"), ("optim_wrapper", "clip_grad"))
    reader.one_of(
        ("optimizer_config", "cumulative_iters"), ("optim_wrapper", "accumulative_counts")
    )
    if found is None:
        return None
    path, optimizer = found
    if not isinstance(optimizer, dict):
        reader.problem(path, "the optimizer must be a mapping such as {type: SGD, lr: 0.02}.")
        return None
    if "lr" not in optimizer:
        reader.problem(path, f"{'.'.join(map(str, path))} needs `lr` (the base learning rate).")
    base = scale.get("base_batch_size", 16)
    if (
        scale.get("enable")
        and reader.positive_int(("auto_scale_lr", "base_batch_size"), base) is None
    ):
        base = 16
    accumulate_path: ConfigPath = ("optim_wrapper", "accumulative_counts")
    if "cumulative_iters" in opt_cfg:  # 2.x GradientCumulativeOptimizerHook
        accumulate_path = ("optimizer_config", "cumulative_iters")
    accumulate = reader.get(accumulate_path, 1)
    accumulate = reader.positive_int(accumulate_path, accumulate) or 1
    amp = (
        wrapper.get("type") == "AmpOptimWrapper"
        or opt_cfg.get("type") == "Fp16OptimizerHook"
        or reader.has(("fp16",))
    )
    loss_scale = wrapper.get(
        "loss_scale", opt_cfg.get("loss_scale", fp16.get("loss_scale", "dynamic"))
    )
    return OptimSettings(
        optimizer=copy.deepcopy(optimizer),
        paramwise_cfg=copy.deepcopy(wrapper.get("paramwise_cfg")),
        clip_grad=dict(clip[1]) if clip else None,
        amp=amp,
        amp_dtype=wrapper.get("dtype"),
        loss_scale=loss_scale,
        accumulative_counts=accumulate,
        where=".".join(map(str, path)),
        auto_scale_lr=bool(scale.get("enable", False)),
        base_batch_size=base,
    )

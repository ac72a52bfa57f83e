"""What `detcli check` knows about the shape of a config beyond the registries.

Component places say which registry the `type` at a config path is looked up in; the
runtime keys are plain settings the engine reads, with the type each must have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detcli.config.origins import ConfigPath


@dataclass(frozen=True)
class Place:
    """A config path holding a component (or a list of them) of one registry kind."""

    path: ConfigPath
    kind: str
    # Keys the builder takes out before calling the constructor (not constructor arguments).
    builder_keys: frozenset[str] = frozenset()


COMPONENT_PLACES: tuple[Place, ...] = (
    Place(("model",), "MODELS"),
    Place(("data", "train"), "DATASETS"),
    Place(("data", "val"), "DATASETS"),
    Place(("data", "test"), "DATASETS"),
    Place(("optimizer",), "OPTIMIZERS", frozenset({"paramwise_cfg", "constructor"})),
    Place(("optim_wrapper", "optimizer"), "OPTIMIZERS"),
    Place(("param_scheduler",), "SCHEDULERS"),
    Place(("custom_hooks",), "HOOKS", frozenset({"priority"})),
    Place(("log_config", "hooks"), "HOOKS", frozenset({"priority"})),
    Place(("val_evaluator",), "METRICS"),
    Place(("test_evaluator",), "METRICS"),
)

# `lr_config.policy` values (detcli.engine.lr_policies; mmcv title-cases lower-case names).
LrPolicy = Literal[
    "step", "Step", "fixed", "Fixed", "exp", "Exp", "inv", "Inv", "poly", "Poly",
    "CosineAnnealing", "cosine",
]  # fmt: skip

# Settings outside components, checked when present: path -> type hint.
RUNTIME_KEYS: dict[ConfigPath, Any] = {
    ("seed",): int | None,
    ("work_dir",): str | None,
    ("load_from",): str | None,
    ("resume_from",): str | None,
    ("device",): str | None,
    ("log_level",): str,
    ("gpu_ids",): list[int] | None,
    ("data", "samples_per_gpu"): int,
    ("data", "workers_per_gpu"): int,
    ("data", "persistent_workers"): bool,
    ("evaluation", "interval"): int,
    ("evaluation", "metric"): str | list[str],
    ("runner", "type"): Literal["EpochBasedRunner", "IterBasedRunner"],
    ("runner", "max_epochs"): int,
    ("runner", "max_iters"): int,
    ("checkpoint_config", "interval"): int,
    ("checkpoint_config", "max_keep_ckpts"): int,
    ("log_config", "interval"): int,
    ("optimizer_config", "grad_clip"): dict[str, Any] | None,
    ("optimizer_config", "grad_clip", "max_norm"): float,
    ("optimizer_config", "grad_clip", "norm_type"): float,
    ("lr_config", "policy"): LrPolicy,
    ("lr_config", "warmup"): Literal["linear", "constant", "exp"] | None,
    ("lr_config", "warmup_iters"): int,
    ("lr_config", "warmup_ratio"): float,
    ("lr_config", "step"): int | list[int],
    ("auto_scale_lr", "enable"): bool,
    ("auto_scale_lr", "base_batch_size"): int,
    # engine: optimizer, schedule, mixed precision (detcli.engine reads these)
    ("optimizer", "paramwise_cfg"): dict[str, Any] | None,
    ("optimizer", "paramwise_cfg", "custom_keys"): dict[str, dict[str, float]],
    ("optimizer", "paramwise_cfg", "norm_decay_mult"): float,
    ("optimizer", "paramwise_cfg", "bias_decay_mult"): float,
    ("optimizer", "paramwise_cfg", "bias_lr_mult"): float,
    ("optimizer", "paramwise_cfg", "dwconv_decay_mult"): float,
    ("optimizer_config", "type"): Literal["OptimizerHook", "Fp16OptimizerHook"],
    ("optim_wrapper", "type"): Literal["OptimWrapper", "AmpOptimWrapper"],
    ("optim_wrapper", "clip_grad"): dict[str, Any] | None,
    ("optim_wrapper", "clip_grad", "max_norm"): float,
    ("optim_wrapper", "clip_grad", "norm_type"): float,
    ("optim_wrapper", "paramwise_cfg"): dict[str, Any] | None,
    ("optim_wrapper", "paramwise_cfg", "custom_keys"): dict[str, dict[str, float]],
    ("optim_wrapper", "paramwise_cfg", "norm_decay_mult"): float,
    ("optim_wrapper", "paramwise_cfg", "bias_decay_mult"): float,
    ("optim_wrapper", "loss_scale"): float | Literal["dynamic"],
    ("optim_wrapper", "dtype"): Literal["float16", "bfloat16"] | None,
    ("fp16",): dict[str, Any] | None,
    ("fp16", "loss_scale"): float | Literal["dynamic"],
    ("lr_config",): dict[str, Any] | None,
    ("lr_config", "by_epoch"): bool,
    ("lr_config", "warmup_by_epoch"): bool,
    ("lr_config", "gamma"): float,
    ("lr_config", "min_lr"): float | None,
    ("lr_config", "min_lr_ratio"): float | None,
    ("lr_config", "power"): float,
    # engine: runner, checkpoints, evaluation, distributed
    ("runner", "max_time"): float | str | None,
    ("checkpoint_config", "by_epoch"): bool | None,
    ("checkpoint_config", "save_last"): bool,
    ("checkpoint_config", "save_best"): str | None,
    ("checkpoint_config", "rule"): Literal["greater", "less"] | None,
    ("evaluation",): dict[str, Any] | None,
    ("evaluation", "by_epoch"): bool | None,
    ("evaluation", "start"): int | None,
    ("evaluation", "save_best"): str | None,
    ("evaluation", "rule"): Literal["greater", "less"] | None,
    ("evaluation", "classwise"): bool,
    ("log_config", "hooks"): list[dict[str, Any]] | None,
    ("custom_hooks",): list[dict[str, Any]] | None,
    ("dist_params", "backend"): Literal["nccl", "gloo"] | None,
    ("find_unused_parameters",): bool,
    ("sync_bn",): bool,
}

# Top-level keys the field's configs use. An unknown key close to one of these is a typo
# that would otherwise be ignored in silence (`optimzer:` leaves the default optimizer).
KNOWN_TOP_LEVEL_KEYS = frozenset(
    {
        "model", "data", "evaluation", "optimizer", "optimizer_config", "lr_config", "runner",
        "checkpoint_config", "log_config", "custom_hooks", "load_from", "resume_from", "work_dir",
        "seed", "device", "auto_scale_lr", "dist_params", "log_level", "gpu_ids", "workflow",
        "param_scheduler", "optim_wrapper", "val_evaluator", "test_evaluator", "fp16",
        "data_root", "classes", "default_hooks", "train_cfg", "val_cfg", "test_cfg",
        "find_unused_parameters", "sync_bn",
    }
)  # fmt: skip

# Keys naming files or folders that must exist before a run starts: key -> "file" | "dir".
PATH_KEYS: dict[str, str] = {
    "ann_file": "file",
    "img_prefix": "dir",
    "load_from": "file",
    "resume_from": "file",
}
# `init_cfg.checkpoint` may also name a hub weight (`timm:...`, `torchvision:...`, a URL).
CHECKPOINT_SCHEMES = ("timm:", "torchvision:", "http://", "https://", "hf-hub:", "hf_hub:")

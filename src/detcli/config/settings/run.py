"""`RunSettings`: every run setting of a config, read once at the config edge.

Engine, data builder, `detcli eval`/`predict`, `check` and resume's config comparison read
these typed objects, never the raw dict. Both MMDetection spellings (2.x and 3.x) are read;
a setting given in both is an error naming both keys (and their files).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from detcli.config.origins import Origins, format_path
from detcli.config.settings.environment import EnvSettings, read_env
from detcli.config.settings.evaluation import EvalSettings, read_evaluation
from detcli.config.settings.hooks import HookSettings, read_hooks
from detcli.config.settings.loaders import LoaderSettings, read_loaders
from detcli.config.settings.loop import LoopSettings, holds_model_settings, read_loop
from detcli.config.settings.optim import OptimSettings, read_optim
from detcli.config.settings.reader import Finding, Key, Section, SettingsReader
from detcli.config.settings.schedule import ScheduleSettings, read_schedule
from detcli.errors import ConfigError

# Top-level keys accepted with no effect in detcli, and why (`check` prints them as notes).
NO_EFFECT: dict[str, str] = {
    "default_scope": "detcli has one namespace of types; scopes choose between OpenMMLab packages",
    "backend_args": "detcli reads local files (no petrel/S3 backends)",
    "gpu_ids": "choose GPUs with CUDA_VISIBLE_DEVICES and processes with --nproc or torchrun",
    "launcher": "detcli detects torchrun by itself",
    "mp_start_method": "data-loader workers start the way torch starts them",
    "opencv_num_threads": "detcli decodes images without OpenCV",
    "file_client_args": "detcli reads local files",
}
# Every top-level key detcli reads (directly or through the settings modules).
KNOWN_TOP_LEVEL_KEYS = frozenset(
    {
        "model", "data", "evaluation", "optimizer", "optimizer_config", "lr_config", "runner",
        "checkpoint_config", "log_config", "custom_hooks", "load_from", "resume_from", "resume",
        "work_dir", "seed", "device", "auto_scale_lr", "dist_params", "log_level", "workflow",
        "param_scheduler", "optim_wrapper", "val_evaluator", "test_evaluator", "fp16",
        "data_root", "classes", "default_hooks", "train_cfg", "val_cfg", "test_cfg",
        "find_unused_parameters", "sync_bn", "train_dataloader", "val_dataloader",
        "test_dataloader", "env_cfg", "log_processor", "visualizer", "vis_backends",
        "randomness", "cudnn_benchmark", "dataset_type", "threads", *NO_EFFECT,
    }
)  # fmt: skip
# Plain top-level settings and the type each must have.
TOP_LEVEL = Section(
    {
        "seed": Key(int | None),
        "work_dir": Key(str | None),
        "load_from": Key(str | None),
        "resume_from": Key(str | None),
        "resume": Key(bool | None),
        "device": Key(str | None),
        "log_level": Key(str),
        "gpu_ids": Key(list[int] | None),
        "find_unused_parameters": Key(bool),
        "sync_bn": Key(bool),
        "cudnn_benchmark": Key(bool),
        "threads": Key(int | None),  # detcli's own: torch threads per process
    },
    open=True,  # the sections are read by their own modules
)
Spelling = Literal["2.x", "3.x"]


@dataclass(frozen=True)
class RunSettings:
    """The run settings of a config, whichever MMDetection spelling it is written in."""

    model: dict[str, Any]
    loop: LoopSettings
    loaders: dict[str, LoaderSettings]
    optim: OptimSettings | None
    schedule: ScheduleSettings
    hooks: HookSettings
    evaluation: EvalSettings
    env: EnvSettings
    spelling: Spelling = "2.x"
    notes: list[Finding] = field(default_factory=list)

    def loader(self, split: str) -> LoaderSettings:
        """The loader settings of `split`; a clear error when the config has none."""
        if split not in self.loaders:
            where = f"{split}_dataloader" if self.spelling == "3.x" else f"data.{split}"
            raise ConfigError(f"The config has no {split} split (`{where}`); add one to use it.")
        return self.loaders[split]

    def resume_signature(self) -> dict[str, Any]:
        """What must not change between a checkpoint and a resumed run: model and schedule."""
        train = self.loaders.get("train")
        return {
            "model": self.model,
            "loop": {
                "by_epoch": self.loop.by_epoch,
                "max_epochs": self.loop.max_epochs,
                "max_iters": self.loop.max_iters,
            },
            "optim": _without_where(self.optim),
            "schedule": asdict(self.schedule),
            "train_batch_size": train.batch_size if train is not None else None,
        }


def spelling_of(cfg: Mapping[str, Any]) -> Spelling:
    """3.x when the config has mmengine's data loaders, loop, hooks or optimizer wrapper."""
    markers = ("train_dataloader", "val_dataloader", "test_dataloader", "default_hooks")
    if any(cfg.get(k) is not None for k in markers):
        return "3.x"
    loop = cfg.get("train_cfg")
    return "3.x" if isinstance(loop, dict) and not holds_model_settings(loop) else "2.x"


def collect_run_settings(
    cfg: Mapping[str, Any], origins: Origins | None = None
) -> tuple[RunSettings, list[Finding]]:
    """The settings of `cfg` and every finding (problems and no-effect notes) on the way."""
    reader = SettingsReader(cfg, origins)
    reader.section((), TOP_LEVEL)
    for key, why in NO_EFFECT.items():
        if key in cfg and key not in ("mp_start_method", "opencv_num_threads"):
            reader.note((key,), f"accepted, no effect in detcli: {why}")
    loop = read_loop(reader)
    loaders = read_loaders(reader)
    settings = RunSettings(
        model=_model_cfg(reader),
        loop=loop,
        loaders=loaders,
        optim=read_optim(reader),
        schedule=read_schedule(reader),
        hooks=read_hooks(reader),
        evaluation=read_evaluation(reader, loop, "val" in loaders),
        env=read_env(reader),
        spelling=spelling_of(cfg),
        notes=[f for f in reader.findings if f.note],
    )
    return settings, reader.findings


def read_run_settings(cfg: Mapping[str, Any], origins: Origins | None = None) -> RunSettings:
    """The run settings of `cfg`; every problem found is listed in one ConfigError."""
    settings, findings = collect_run_settings(cfg, origins)
    problems = [f for f in findings if not f.note]
    if problems:
        reader = SettingsReader(cfg, origins)
        lines = [f"- {reader.where(p.path)}: {_without_path(p)}" for p in problems]
        raise ConfigError(
            f"The config's run settings have {len(problems)} problem(s) "
            "(`detcli check` lists them all):\n" + "\n".join(lines)
        )
    return settings


def _model_cfg(reader: SettingsReader) -> dict[str, Any]:
    """`model`, with RPN/R-CNN settings from a top-level `train_cfg`/`test_cfg` moved in."""
    model = copy.deepcopy(reader.get(("model",), None) or {})
    if not isinstance(model, dict):
        reader.problem(("model",), "model must be a mapping with `type` (e.g. FasterRCNN).")
        return {}
    for key in ("train_cfg", "test_cfg"):
        outer = reader.get((key,), None)
        if holds_model_settings(outer):
            if model.get(key) is not None:
                reader.one_of((key,), ("model", key))
            else:
                model[key] = copy.deepcopy(outer)
    return model


def _without_where(optim: OptimSettings | None) -> dict[str, Any] | None:
    """The optimizer settings minus the key they were read from (a spelling, not a setting)."""
    if optim is None:
        return None
    fields = asdict(optim)
    fields.pop("where")
    return fields


def _without_path(finding: Finding) -> str:
    """The message without a leading repeat of the config path it is already listed under."""
    prefix = format_path(finding.path) + " "
    return finding.message[len(prefix) :] if finding.message.startswith(prefix) else finding.message

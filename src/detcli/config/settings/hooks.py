"""Hooks: checkpoints, logging, visualization and the user's own.

2.x: `checkpoint_config`, `log_config: {interval, hooks}`, `custom_hooks`. 3.x (mmengine):
`default_hooks: {timer, logger, param_scheduler, checkpoint, sampler_seed, visualization}`,
`custom_hooks`, `log_processor: {window_size, by_epoch}`, and TensorBoard through
`visualizer.vis_backends` (or the top-level `vis_backends`) holding `TensorboardVisBackend`.
The engine always runs the timer, LR-schedule and sampler-seed hooks; the settings here say
which other hooks run, as `{type, priority?, **args}` mappings for the HOOKS registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from detcli.config.settings.reader import Key, Section, SettingsReader

_CHECKPOINT_KEYS = {
    "interval": Key(int),
    "by_epoch": Key(bool | None),
    "max_keep_ckpts": Key(int),
    "save_last": Key(bool),
    "save_best": Key(str | list[str] | None),
    "rule": Key(Literal["greater", "less"] | None),
    "save_optimizer": Key(bool, "every checkpoint holds the optimizer state (exact resume)"),
    "out_dir": Key(str | None, "checkpoints are written to the work dir"),
    "backend_args": Key(dict[str, Any] | None, "detcli writes local files"),
    "file_client_args": Key(dict[str, Any] | None, "detcli writes local files"),
}
CHECKPOINT_CONFIG = Section(_CHECKPOINT_KEYS)
CHECKPOINT_HOOK = Section(
    {
        "type": Key(Literal["CheckpointHook"]),
        **_CHECKPOINT_KEYS,
        "save_param_scheduler": Key(bool, "the LR schedule's state is always saved"),
        "filename_tmpl": Key(str | None, "checkpoints are named epoch_N.pth / iter_N.pth"),
        "published_keys": Key(list[str] | None, "checkpoints hold weights, optimizer and schedule"),
        "save_begin": Key(int, "checkpoints are saved from the first interval"),
        "greater_keys": Key(list[str] | None, "use `rule`"),
        "less_keys": Key(list[str] | None, "use `rule`"),
    },
    other_spelling={"max_keep_ckpt": "max_keep_ckpts"},
)
LOG_CONFIG = Section({"interval": Key(int), "hooks": Key(list[dict[str, Any]] | None)})
LOGGER_HOOK = Section(
    {
        "type": Key(Literal["LoggerHook"]),
        "interval": Key(int),
        "ignore_last": Key(bool),
        "interval_exp_name": Key(int, "detcli writes no experiment-name lines"),
        "out_dir": Key(str | None, "logs are written to the work dir"),
        "out_suffix": Key(Any, "logs are train.log and log.jsonl"),
        "keep_local": Key(bool, "logs are written to the work dir"),
        "file_client_args": Key(dict[str, Any] | None, "detcli writes local files"),
        "backend_args": Key(dict[str, Any] | None, "detcli writes local files"),
        "log_metric_by_epoch": Key(bool, "validation metrics are logged with epoch and iter"),
    }
)
FIXED_HOOK = Section({"type": Key(str)})
VISUALIZATION_HOOK = Section(
    {
        "type": Key(Literal["DetVisualizationHook"]),
        "draw": Key(bool),
        "interval": Key(int),
        "score_thr": Key(float),
        "show": Key(bool),
        "wait_time": Key(float),
        "test_out_dir": Key(str | None),
        "backend_args": Key(dict[str, Any] | None, "detcli writes local files"),
    }
)
DEFAULT_HOOKS = Section(
    {
        "timer": Key(dict[str, Any] | None),
        "logger": Key(dict[str, Any] | None),
        "param_scheduler": Key(dict[str, Any] | None),
        "checkpoint": Key(dict[str, Any] | None),
        "sampler_seed": Key(dict[str, Any] | None),
        "visualization": Key(dict[str, Any] | None),
    },
    open=True,  # mmengine takes any named hook here; they are HOOKS components
)
LOG_PROCESSOR = Section(
    {
        "type": Key(Literal["LogProcessor"]),
        "window_size": Key(int | Literal["epoch", "global"]),
        "by_epoch": Key(bool),
        "custom_cfg": Key(list[Any] | None, "every logged value is the window mean"),
        "num_digits": Key(int, "the console shows 4 significant digits"),
        "log_with_hierarchy": Key(bool, "log.jsonl keys are flat"),
        "mean_pattern": Key(str, "every logged value is the window mean"),
    }
)
VIS_BACKEND_TYPES = ("LocalVisBackend", "TensorboardVisBackend")
VISUALIZER = Section(
    {
        "type": Key(Literal["DetLocalVisualizer", "Visualizer"]),
        "vis_backends": Key(list[dict[str, Any]] | None),
        "name": Key(str, "there is one visualizer per run"),
        "save_dir": Key(str | None, "drawings go to the work dir"),
        "line_width": Key(float, "detcli's drawings scale with the image"),
        "alpha": Key(float, "detcli's drawings scale with the image"),
        "bbox_color": Key(Any, "boxes take the dataset's palette or detcli's colours"),
        "text_color": Key(Any, "labels take their box's colour"),
    }
)


@dataclass(frozen=True)
class HookSettings:
    """The hooks a run adds to the engine's own, as HOOKS configs in order."""

    checkpoint: dict[str, Any] | None = None  # CheckpointHook args
    loggers: list[dict[str, Any]] = field(default_factory=list)
    visualization: dict[str, Any] | None = None
    custom: list[dict[str, Any]] = field(default_factory=list)
    log_interval: int = 50


def read_hooks(reader: SettingsReader) -> HookSettings:
    """Hooks from `checkpoint_config`/`log_config` (2.x) or `default_hooks` (3.x)."""
    defaults = reader.section(("default_hooks",), DEFAULT_HOOKS)
    checkpoint = _checkpoint(reader, defaults)
    interval = _log_interval(reader, defaults)
    loggers = _loggers(reader, defaults, interval)
    visualization = None
    if defaults.get("visualization"):
        vis = reader.section(("default_hooks", "visualization"), VISUALIZATION_HOOK)
        visualization = {k: v for k, v in vis.items() if k != "backend_args"}
    for name in ("timer", "param_scheduler", "sampler_seed"):
        if defaults.get(name):
            reader.section(("default_hooks", name), FIXED_HOOK)
    custom = list(reader.get(("custom_hooks",), None) or [])
    for name, hook in defaults.items():
        if name not in DEFAULT_HOOKS.keys and isinstance(hook, dict):
            custom.append(hook)  # a user's own named default hook
    return HookSettings(
        checkpoint=checkpoint,
        loggers=loggers,
        visualization=visualization,
        custom=custom,
        log_interval=interval,
    )


def _checkpoint(reader: SettingsReader, defaults: dict[str, Any]) -> dict[str, Any] | None:
    v2 = reader.section(("checkpoint_config",), CHECKPOINT_CONFIG)
    v3 = {}
    if defaults.get("checkpoint"):
        v3 = reader.section(("default_hooks", "checkpoint"), CHECKPOINT_HOOK)
    for key in _CHECKPOINT_KEYS:
        reader.one_of(("checkpoint_config", key), ("default_hooks", "checkpoint", key))
    if not reader.has(("checkpoint_config",)) and not v3:
        return None
    args = {**v2, **v3}
    args.pop("type", None)
    for key, spec in CHECKPOINT_HOOK.keys.items():
        if spec.no_effect is not None:
            args.pop(key, None)
    where = ("default_hooks", "checkpoint") if v3 else ("checkpoint_config",)
    if args.get("interval") == 0:
        reader.problem(
            (*where, "interval"), "the checkpoint interval must not be 0 (-1: only at the end)."
        )
    if args.get("max_keep_ckpts") == 0:
        reader.problem(
            (*where, "max_keep_ckpts"),
            "max_keep_ckpts 0 would delete every checkpoint; use -1 to keep all.",
        )
    return args


def _log_interval(reader: SettingsReader, defaults: dict[str, Any]) -> int:
    v2 = reader.section(("log_config",), LOG_CONFIG)
    v3 = reader.section(("default_hooks", "logger"), LOGGER_HOOK) if defaults.get("logger") else {}
    found = reader.one_of(("log_config", "interval"), ("default_hooks", "logger", "interval"))
    del v2, v3
    if found is None:
        return 50
    return reader.positive_int(found[0], found[1]) or 50


def _loggers(
    reader: SettingsReader, defaults: dict[str, Any], interval: int
) -> list[dict[str, Any]]:
    processor = reader.section(("log_processor",), LOG_PROCESSOR)
    window = processor.get("window_size")
    log_config = reader.get(("log_config",), None)
    if isinstance(log_config, dict) and log_config.get("hooks") is not None:
        hooks = [dict(h) for h in log_config["hooks"] if isinstance(h, dict)]
    elif defaults.get("logger") or reader.has(("log_processor",)) or _is_3x_runtime(reader):
        hooks = [{"type": "TextLoggerHook"}]
        if "TensorboardVisBackend" in _vis_backends(reader):
            hooks.append({"type": "TensorboardLoggerHook"})
    else:
        hooks = [{"type": "TextLoggerHook"}]
    out = []
    for hook in hooks:
        hook.setdefault("interval", interval)
        if window is not None:
            hook.setdefault("window_size", window)
        if "by_epoch" in processor:  # how log lines count: Epoch [e][i/n] or Iter [i/N]
            hook.setdefault("by_epoch", processor["by_epoch"])
        out.append(hook)
    return out


def _is_3x_runtime(reader: SettingsReader) -> bool:
    return any(reader.has((k,)) for k in ("default_hooks", "visualizer", "vis_backends"))


def _vis_backends(reader: SettingsReader) -> list[str]:
    visualizer = reader.section(("visualizer",), VISUALIZER)
    backends = visualizer.get("vis_backends")
    path: tuple[str, ...] = ("visualizer", "vis_backends")
    if backends is None:
        backends = reader.get(("vis_backends",), None)
        path = ("vis_backends",)
    names = []
    for i, backend in enumerate(backends or []):
        kind = backend.get("type") if isinstance(backend, dict) else None
        if kind not in VIS_BACKEND_TYPES:
            reader.problem(
                (*path, i),
                f"vis backend {kind!r} is not available; detcli writes LocalVisBackend (the work "
                "dir's logs, always) and TensorboardVisBackend (tf_logs/).",
            )
            continue
        extra = [k for k in backend if k not in ("type", "save_dir")]
        if extra:
            reader.note((*path, i), f"accepted, no effect in detcli: {', '.join(extra)}")
        names.append(kind)
    return names

"""`detcli check`, model part: do the parts of `model:` fit together? Found without a forward pass.

The model is built on PyTorch's `meta` device (shapes, no memory, no weights), exactly as a run
builds it, so constructor errors surface here, and so does every wiring mismatch the parts find
while shapes flow from one to the next (`detcli.models.shapes`), one finding per config key.
Hub weight names in `init_cfg` are checked against the backbone's architecture.

torch and timm are imported inside functions: `detcli.config` must import without them.
"""

from __future__ import annotations

from typing import Any

from detcli.config.origins import ConfigPath
from detcli.errors import DetcliError
from detcli.registry import Registry

Finding = tuple[ConfigPath, str]


def model_problems(model: Any, models: Registry) -> list[Finding]:
    """Wiring problems of a `model:` mapping whose types are all registered and arguments valid."""
    if not isinstance(model, dict) or model.get("type") not in models:
        return []
    found = _init_cfg_problems(model, ("model",))
    if found:
        return found  # building would only stop at the first of them
    built, found = _build_on_meta(model, models)
    if built is None:
        return found
    return _init_weights(model, built)


def _init_cfg_problems(cfg: Any, path: ConfigPath) -> list[Finding]:
    """Every `init_cfg` in the model's parts, read as the build will read it."""
    from detcli.models.init_cfg import init_cfg_problems

    found: list[Finding] = []
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == "init_cfg" and value is not None:
                found += [((*path, key, *sub), msg) for sub, msg in init_cfg_problems(value)]
            elif key not in ("train_cfg", "test_cfg"):
                found += _init_cfg_problems(value, (*path, key))
    elif isinstance(cfg, list):
        for i, item in enumerate(cfg):
            found += _init_cfg_problems(item, (*path, i))
    return found


def _build_on_meta(model: dict[str, Any], models: Registry) -> tuple[Any, list[Finding]]:
    """Build the model on the meta device; the parts' wiring problems, one per config key."""
    import torch

    from detcli.model_config import route_run_cfgs
    from detcli.models.shapes import WiringError

    try:
        with torch.device("meta"):  # what build_model does, less its check of the result
            return models.build(route_run_cfgs(model, models), where="model"), []
    except WiringError as exc:
        return None, [(("model", *p.path), p.message) for p in exc.problems]
    except DetcliError as exc:
        return None, [(("model",), f"the model cannot be built: {exc}")]
    except Exception as exc:  # a constructor's own check (a plugin's assert, a shape, ...)
        return None, [(("model",), f"the model cannot be built: {type(exc).__name__}: {exc}")]


def _init_weights(cfg: dict[str, Any], model: Any) -> list[Finding]:
    """Hub weight names must exist and be made for the backbone's architecture."""
    backbone_cfg = cfg.get("backbone")
    init = backbone_cfg.get("init_cfg") if isinstance(backbone_cfg, dict) else None
    checkpoint = init.get("checkpoint") if isinstance(init, dict) else None
    arch = getattr(getattr(model, "backbone", None), "timm_name", None)
    if not isinstance(checkpoint, str) or not isinstance(arch, str):
        return []
    path: ConfigPath = ("model", "backbone", "init_cfg", "checkpoint")
    from detcli.models.backbones.pretrained import hub_name

    written = checkpoint
    try:
        checkpoint = hub_name(checkpoint)
    except DetcliError as exc:
        return [(path, str(exc))]
    shown = repr(written) if written == checkpoint else f"{written!r} (here {checkpoint})"
    if checkpoint.startswith("timm:"):
        name = checkpoint.removeprefix("timm:")
        weights_arch, problem = _timm_weights(name)
    elif checkpoint.startswith("torchvision:"):
        name = checkpoint.removeprefix("torchvision:")
        weights_arch, problem = _torchvision_weights(name)
    else:
        return []
    if problem:
        return [(path, problem)]
    if weights_arch != arch:
        return [
            (
                path,
                f"{shown} holds weights for {weights_arch}, but the backbone is {arch}; "
                f"pick weights made for {arch}.",
            )
        ]
    return []


def _timm_weights(name: str) -> tuple[str, str]:
    import timm

    arch = name.split(".")[0]
    try:
        timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        known = ", ".join(timm.list_pretrained(f"{arch}.*")[:12]) or "none"
        return arch, f"timm has no pretrained weights named {name!r}. Known for {arch}: {known}."
    if timm.models.get_pretrained_cfg(name) is None:
        return arch, f"timm has no model {arch!r}."
    return arch, ""


def _torchvision_weights(name: str) -> tuple[str, str]:
    import torchvision

    arch, _, tag = name.partition(".")
    try:
        weights = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        return arch, f"torchvision has no model {arch!r} with weights."
    if tag and tag not in weights.__members__:
        return arch, (
            f"torchvision has no weights {tag!r} for {arch}; known: "
            f"{', '.join(weights.__members__)}."
        )
    return arch, ""


# MMDetection's CocoMetric names detcli's models cannot give, and why. `segm` is allowed when
# the model has a mask head (`model.roi_head.mask_head`, as Mask R-CNN's).
UNAVAILABLE_METRICS = {
    "segm": "masks, which need a mask head: this model has no model.roi_head.mask_head "
    "(use a Mask R-CNN config, e.g. mask_rcnn_r50_fpn_1x_coco)",
    "proposal": "the RPN's proposals scored on their own; detcli scores the detector's boxes",
    "proposal_fast": "the RPN's proposals scored on their own; detcli scores the detector's boxes",
    "keypoints": "keypoints, which no detcli model predicts",
}


def metric_problems(cfg: Any) -> list[Finding]:
    """`evaluation.metric` / `*_evaluator.metric` names the model cannot give (`segm` without a
    mask head): found by `check` instead of after the first epoch's evaluation."""
    if not isinstance(cfg, dict):
        return []
    allowed = ("bbox", "segm") if _has_mask_head(cfg.get("model")) else ("bbox",)
    places: list[tuple[ConfigPath, Any]] = []
    evaluation = cfg.get("evaluation")
    if isinstance(evaluation, dict) and "metric" in evaluation:
        places.append((("evaluation", "metric"), evaluation["metric"]))
    for key in ("val_evaluator", "test_evaluator"):
        value = cfg.get(key)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, dict) and item.get("type") == "CocoMetric" and "metric" in item:
                path: ConfigPath = (key, "metric") if index is None else (key, index, "metric")
                places.append((path, item["metric"]))
    found: list[Finding] = []
    for path, value in places:
        names = value if isinstance(value, list) else [value]
        for i, name in enumerate(names):
            if not isinstance(name, str) or name in allowed:
                continue
            why = UNAVAILABLE_METRICS.get(name, "a metric CocoMetric does not know")
            where: ConfigPath = (*path, i) if isinstance(value, list) else path
            use = " or ".join(allowed)
            found.append(
                (
                    where,
                    f"metric {name!r} needs {why}. This model can be scored by metric {use} "
                    "(evaluation would otherwise fail after the first epoch).",
                )
            )
    return found


def _has_mask_head(model: Any) -> bool:
    """Whether `model:` predicts masks: its RoI head has a `mask_head` (per stage: a list)."""
    roi_head = model.get("roi_head") if isinstance(model, dict) else None
    mask_head = roi_head.get("mask_head") if isinstance(roi_head, dict) else None
    return bool(mask_head)

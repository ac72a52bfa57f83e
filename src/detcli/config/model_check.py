"""`detcli check`, model part: do the parts of `model:` fit together? Found without a forward pass.

The model is built on PyTorch's `meta` device (shapes, no memory, no weights), so constructor
errors surface here, and then the wiring is compared: the backbone's feature channels and
strides (timm's `feature_info`) against the neck's `in_channels`, the neck's output strides
against the anchor strides and the RoI extractor's `featmap_strides`, channel counts along the
heads, and hub weight names in `init_cfg`. Parts from plugins are checked where they expose the
same attributes (`out_channels`, `strides`, `output_strides()`), and skipped otherwise.

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
    built, error = _build_on_meta(model, models)
    if error:
        return [(("model",), error)]
    return _wiring(model, built) + _init_weights(model, built)


def _build_on_meta(model: dict[str, Any], models: Registry) -> tuple[Any, str]:
    import torch

    try:
        with torch.device("meta"):
            return models.build(model), ""
    except DetcliError as exc:
        return None, f"the model cannot be built: {exc}"
    except Exception as exc:  # a constructor's own check (a plugin's assert, a shape, ...)
        return None, f"the model cannot be built: {type(exc).__name__}: {exc}"


def _wiring(cfg: dict[str, Any], model: Any) -> list[Finding]:
    found: list[Finding] = []
    backbone = getattr(model, "backbone", None)
    neck = getattr(model, "neck", None)
    channels = getattr(backbone, "out_channels", None)
    strides = getattr(backbone, "strides", None)
    if not isinstance(channels, list) or not isinstance(strides, list):
        return found  # a backbone that does not describe its outputs
    what = _describe_backbone(cfg.get("backbone"), backbone)
    if neck is not None:
        neck_in = getattr(neck, "in_channels", None)
        neck_type = cfg["neck"].get("type")
        if isinstance(neck_in, list) and neck_in != channels:
            found.append(
                (
                    ("model", "neck", "in_channels"),
                    f"{neck_type} in_channels is {neck_in}, but {what} gives feature maps with "
                    f"{channels} channels; set in_channels: {channels}.",
                )
            )
            return found  # strides downstream would only repeat the same mistake
        out_channels = getattr(neck, "out_channels", None)
        output_strides = getattr(neck, "output_strides", None)
        strides = output_strides(strides) if callable(output_strides) else None
        source = f"the {neck_type} neck"
    else:
        out_channels = channels[0] if len(set(channels)) == 1 else None
        source = what
    found += _heads(model, out_channels, strides, source)
    return found


def _heads(model: Any, channels: Any, strides: Any, source: str) -> list[Finding]:
    found: list[Finding] = []
    rpn = getattr(model, "rpn_head", None)
    rpn_in = getattr(rpn, "in_channels", None)
    if isinstance(channels, int) and isinstance(rpn_in, int) and rpn_in != channels:
        found.append(
            (
                ("model", "rpn_head", "in_channels"),
                f"rpn_head.in_channels is {rpn_in}, but {source} outputs {channels} channels.",
            )
        )
    anchors = getattr(getattr(rpn, "prior_generator", None), "strides", None)
    if isinstance(strides, list) and isinstance(anchors, list):
        anchor_strides = [s[0] if isinstance(s, tuple) else s for s in anchors]
        if anchor_strides != strides:
            found.append(
                (
                    ("model", "rpn_head", "anchor_generator", "strides"),
                    f"anchor strides are {anchor_strides}, but {source} outputs levels with "
                    f"strides {strides}; set strides: {strides} (one per level).",
                )
            )
    roi_head = getattr(model, "roi_head", None)
    extractor = getattr(roi_head, "bbox_roi_extractor", None)
    feat_strides = getattr(extractor, "featmap_strides", None)
    path = ("model", "roi_head", "bbox_roi_extractor")
    if (
        isinstance(strides, list)
        and isinstance(feat_strides, list)
        and feat_strides != strides[: len(feat_strides)]
    ):
        found.append(
            (
                (*path, "featmap_strides"),
                f"featmap_strides is {feat_strides}, but {source} outputs levels with strides "
                f"{strides}; RoIs are pooled from the first levels, so use "
                f"{strides[: min(len(feat_strides), len(strides))]}.",
            )
        )
    ext_channels = getattr(extractor, "out_channels", None)
    if isinstance(channels, int) and isinstance(ext_channels, int) and ext_channels != channels:
        found.append(
            (
                (*path, "out_channels"),
                f"out_channels is {ext_channels}, but {source} outputs {channels} channels.",
            )
        )
    head = getattr(roi_head, "bbox_head", None)
    head_in = getattr(head, "in_channels", None)
    if isinstance(ext_channels, int) and isinstance(head_in, int) and head_in != ext_channels:
        found.append(
            (
                ("model", "roi_head", "bbox_head", "in_channels"),
                f"bbox_head.in_channels is {head_in}, but the RoI extractor gives {ext_channels} "
                "channels.",
            )
        )
    size = getattr(extractor, "output_size", None)
    feat_size = getattr(head, "roi_feat_size", None)
    if isinstance(size, tuple) and isinstance(feat_size, int) and size != (feat_size, feat_size):
        found.append(
            (
                ("model", "roi_head", "bbox_head", "roi_feat_size"),
                f"roi_feat_size is {feat_size}, but roi_layer.output_size pools {list(size)}.",
            )
        )
    return found


def _describe_backbone(cfg: Any, backbone: Any) -> str:
    name = cfg.get("type") if isinstance(cfg, dict) else type(backbone).__name__
    timm_name = getattr(backbone, "timm_name", None)
    indices = cfg.get("out_indices") if isinstance(cfg, dict) else None
    extra = f" out_indices {indices}" if indices is not None else ""
    return f"the {name} backbone ({timm_name}{extra})" if timm_name else f"the {name} backbone"


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


# MMDetection's CocoMetric names detcli's models cannot give, and why (they predict boxes only).
UNAVAILABLE_METRICS = {
    "segm": "masks, which need a mask head (Mask R-CNN); detcli has no mask head yet",
    "proposal": "the RPN's proposals scored on their own; detcli scores the detector's boxes",
    "proposal_fast": "the RPN's proposals scored on their own; detcli scores the detector's boxes",
    "keypoints": "keypoints, which no detcli model predicts",
}


def metric_problems(cfg: Any) -> list[Finding]:
    """`evaluation.metric` / `*_evaluator.metric` names the model cannot give (`segm`): found by
    `check` instead of after the first epoch's evaluation."""
    if not isinstance(cfg, dict):
        return []
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
            if not isinstance(name, str) or name == "bbox":
                continue
            why = UNAVAILABLE_METRICS.get(name, "a metric CocoMetric does not know")
            where: ConfigPath = (*path, i) if isinstance(value, list) else path
            found.append(
                (
                    where,
                    f"metric {name!r} needs {why}. detcli's models predict boxes: use "
                    "metric: bbox (evaluation would otherwise fail after the first epoch).",
                )
            )
    return found

"""Applying `init_cfg` to built modules, in mmengine's order (mmengine/model/base_module.py).

`init_weights(model)` walks the model depth first. At each module that has an `init_cfg`
attribute (detcli's parts store the value they were given; None leaves them as built):
1. its own `init_weights()` method, if it defines one: the code's default initialisation;
2. its init_cfg's fills, in the order written (each: its `layer` types, then its overrides);
3. its children, the same way, so a child's own init_cfg overwrites what its parent's did;
4. its init_cfg's Pretrained entries, last, so no fill ever overwrites loaded weights.
Modules without an `init_cfg` attribute (torch's, timm's, torchvision's) are walked through to
reach their children but never re-initialised themselves: a timm model's own `init_weights`
would redraw every weight it was built with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.backbones.pretrained import (
    key_listing,
    load_pretrained,
    read_state_dict,
    unwrap_state_dict,
)
from detcli.models.init_cfg import FillSpec, InitSpec, PretrainedSpec, read_init_cfg
from detcli.suggest import did_you_mean

# Modules whose walk is under way: a module's `init_weights()` may call `init_weights(self)`.
_WALKING: set[int] = set()


def init_weights(model: nn.Module, where: str = "model") -> None:
    """Initialise `model` from the init_cfg of each of its parts (see the module docstring)."""
    if id(model) not in _WALKING:
        _walk(model, where)


def initialize(module: nn.Module, init_cfg: Any, where: str) -> None:
    """Apply one module's init_cfg (`where`: its config path): fills, then Pretrained entries."""
    specs = read_init_cfg(init_cfg, where)
    for spec in specs:
        if isinstance(spec, FillSpec):
            _fill(module, spec)
    for spec in specs:
        if isinstance(spec, PretrainedSpec):
            _load(module, spec)


def _walk(module: nn.Module, where: str) -> None:
    specs: list[InitSpec] = []
    _WALKING.add(id(module))
    try:
        if hasattr(module, "init_cfg"):
            specs = read_init_cfg(module.init_cfg, f"{where}.init_cfg")
            own = getattr(module, "init_weights", None)
            if callable(own):
                own()
        for spec in specs:
            if isinstance(spec, FillSpec):
                _fill(module, spec)
        for name, child in module.named_children():
            _walk(child, f"{where}.{name}")
        for spec in specs:
            if isinstance(spec, PretrainedSpec):
                _load(module, spec)
    finally:
        _WALKING.discard(id(module))


def _fill(module: nn.Module, spec: FillSpec) -> None:
    # Post-order, as nn.Module.apply (mmengine's walk), so a seed draws mmengine's weights.
    matched = [(n, m) for n, m in _post_order(module) if _class_names(m) & set(spec.layer)]
    if spec.layer and not matched:
        present = sorted({type(m).__name__ for m in module.modules() if _has_weights(m)})
        hint = did_you_mean(spec.layer[0], {c for m in module.modules() for c in _class_names(m)})
        raise ModelError(
            f"{spec.where}.layer: {type(module).__name__} has no {' or '.join(spec.layer)} "
            f"submodule, so this {spec.type} init would change nothing.{hint} Its layers with "
            f"weights: {', '.join(present) or 'none'}."
        )
    for name, m in matched:
        _fill_one(m, name, spec)
    for override in spec.override:
        try:
            child = module.get_submodule(override.name)
        except AttributeError:
            children = [n for n, _ in module.named_children()]
            raise ModelError(
                f"{override.fill.where}.name: {type(module).__name__} has no child "
                f"{override.name!r}.{did_you_mean(override.name, children)} Its children: "
                f"{', '.join(children) or 'none'}."
            ) from None
        for name, m in _post_order(child, override.name):
            _fill_one(m, name, override.fill)


def _fill_one(m: nn.Module, name: str, spec: FillSpec) -> None:
    """mmengine's `*_init(module)`: the fill on `weight`, the constant `bias` on `bias`."""
    weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    if isinstance(weight, Tensor):
        try:
            _draw(weight, spec)
        except ValueError as exc:  # Xavier/Kaiming need fans: no 1-D (norm layer) weights
            raise ModelError(
                f"{spec.where}: {spec.type} cannot initialise {name or 'the module'}.weight of "
                f"shape {tuple(weight.shape)} ({exc}); narrow layer (or the override) to "
                "Conv2d/Linear."
            ) from None
    if isinstance(bias, Tensor):
        nn.init.constant_(bias, spec.bias)


def _draw(weight: Tensor, spec: FillSpec) -> None:
    num = {k: v for k, v in spec.args.items() if isinstance(v, float)}
    word = {k: v for k, v in spec.args.items() if isinstance(v, str)}
    uniform = word.get("distribution") == "uniform"
    if spec.type == "Normal":
        nn.init.normal_(weight, num["mean"], num["std"])
    elif spec.type == "TruncNormal":
        nn.init.trunc_normal_(weight, num["mean"], num["std"], num["a"], num["b"])
    elif spec.type == "Uniform":
        nn.init.uniform_(weight, num["a"], num["b"])
    elif spec.type == "Constant":
        nn.init.constant_(weight, num["val"])
    elif spec.type == "Xavier":
        xavier = nn.init.xavier_uniform_ if uniform else nn.init.xavier_normal_
        xavier(weight, gain=num["gain"])
    elif spec.type == "Kaiming":  # mode and nonlinearity: init_cfg.CHOICES checked them
        kaiming = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
        kaiming(weight, a=num["a"], mode=word["mode"], nonlinearity=word["nonlinearity"])  # type: ignore[arg-type]
    elif spec.type == "Caffe2Xavier":  # Caffe2's XavierFill, as mmengine writes it
        nn.init.kaiming_uniform_(weight, a=1, mode="fan_in", nonlinearity="leaky_relu")
    else:
        raise AssertionError(f"no fill for init type {spec.type!r}")  # init_cfg.py lists them


def _load(module: nn.Module, spec: PretrainedSpec) -> None:
    """Copy a checkpoint's weights into `module`; every parameter must be found, shapes equal."""
    # Imported here: backbones may import this module to initialise themselves.
    from detcli.models.backbones.timm_features import TimmFeatures

    if isinstance(module, TimmFeatures):  # timm's and torchvision's names, detector files
        load_pretrained(module, spec.checkpoint, prefix=spec.prefix, where=spec.where)
        return
    state = raw = unwrap_state_dict(read_state_dict(spec.checkpoint, spec.where))
    if spec.prefix:
        state = {k[len(spec.prefix) :]: v for k, v in raw.items() if k.startswith(spec.prefix)}
    target = module.state_dict()
    # Older checkpoints lack BatchNorm's step counter; it does not affect the weights.
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in target.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or wrong:
        tops = sorted({k.split(".")[0] + "." for k in raw})
        raise ModelError(
            f"{spec.where}.checkpoint: {spec.checkpoint!r} does not fit {type(module).__name__}"
            f"{f' under prefix {spec.prefix!r}' if spec.prefix else ''}: "
            f"{key_listing('missing from the file', missing)}{key_listing('shape mismatch', wrong)}"
            f"The file's keys start with {', '.join(tops[:8])}; set prefix to the part that "
            "holds this module's weights (e.g. prefix: backbone.)."
        )
    module.load_state_dict({k: v for k, v in state.items() if k in target}, strict=False)


def _post_order(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        yield from _post_order(child, f"{prefix}.{name}" if prefix else name)
    yield prefix, module


def _class_names(m: nn.Module) -> set[str]:
    """The class of `m` and its bases (mmengine: `layer: _BatchNorm` matches BatchNorm2d)."""
    return {c.__name__ for c in type(m).__mro__} - {"Module", "object"}


def _has_weights(m: nn.Module) -> bool:
    return isinstance(getattr(m, "weight", None), Tensor)

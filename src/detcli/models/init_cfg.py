"""`init_cfg` as MMDetection writes it, read into typed specs. Imports no torch: `check` uses it.

An init_cfg is a mapping or a list of mappings, each with a `type`:
- a fill (Normal, TruncNormal, Uniform, Constant, Xavier, Kaiming, Caffe2Xavier) sets the
  weights and biases of the submodules whose class is named in `layer`, and of every
  submodule of each child named in `override` (that child's own `type` and arguments, or,
  with `name` alone, the entry's);
- Pretrained copies weights from a checkpoint (`prefix` keeps one subtree of the file).
The keys, defaults and the override rules are mmengine's (mmengine/model/weight_init.py).
Where mmengine silently does nothing (a fill with neither `layer` nor `override`), this is
an error, so a misspelt init_cfg cannot train with weights the user did not ask for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from detcli.errors import ModelError
from detcli.suggest import did_you_mean

SubPath = tuple[str | int, ...]
Problem = tuple[SubPath, str]

# Each fill type's own arguments with mmengine's defaults (None: required).
FILL_ARGS: dict[str, dict[str, float | str | None]] = {
    "Normal": {"mean": 0.0, "std": 1.0},
    "TruncNormal": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
    "Uniform": {"a": 0.0, "b": 1.0},
    "Constant": {"val": None},
    "Xavier": {"gain": 1.0, "distribution": "normal"},
    "Kaiming": {"a": 0.0, "mode": "fan_out", "nonlinearity": "relu", "distribution": "normal"},
    "Caffe2Xavier": {},  # Caffe2's XavierFill: Kaiming uniform, fan_in, leaky_relu with a=1
}
FILL_KEYS = ("type", "bias", "bias_prob", "layer", "override")
PRETRAINED_KEYS = ("type", "checkpoint", "prefix", "map_location")
INIT_TYPES = (*FILL_ARGS, "Pretrained")
CHOICES = {
    "distribution": ("normal", "uniform"),
    "mode": ("fan_in", "fan_out"),
    "nonlinearity": (  # the names torch.nn.init.calculate_gain knows
        "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class FillSpec:
    """One fill entry; `args` are the type's own arguments with the defaults filled in."""

    type: str
    args: Mapping[str, float | str]
    bias: float = 0.0
    layer: tuple[str, ...] = ()  # class names; a submodule matches its class or a base class
    override: tuple[Override, ...] = ()
    where: str = "init_cfg"  # this entry's config path, for error messages


@dataclass(frozen=True)
class Override:
    """A child (attribute name, dotted for deeper ones) whose every submodule gets `fill`."""

    name: str
    fill: FillSpec


@dataclass(frozen=True)
class PretrainedSpec:
    """Weights from a checkpoint; `prefix` (ending in a dot) keeps only the keys under it."""

    checkpoint: str
    prefix: str | None = None
    # Weights are always read onto the CPU, then copied to wherever the module lives: what any
    # map_location achieves for initialisation. Accepted so that mmdet configs load unchanged.
    map_location: str | None = "cpu"
    where: str = "init_cfg"


InitSpec = FillSpec | PretrainedSpec


def read_init_cfg(value: Any, where: str) -> list[InitSpec]:
    """The specs an init_cfg value describes (null: none); ModelError naming `where` if invalid."""
    specs, problems = _read(value, where)
    if problems:
        raise ModelError(" ".join(f"{_at(where, sub)}: {message}" for sub, message in problems))
    return specs


def init_cfg_problems(value: Any) -> list[Problem]:
    """Every problem of an init_cfg value, as (path below init_cfg, message), for `detcli check`."""
    return _read(value, "init_cfg")[1]


def _at(where: str, sub: SubPath) -> str:
    return ".".join([where, *(str(p) for p in sub)])


class _Reader:
    """Reads the entries of one init_cfg, collecting every problem (`check` shows them all)."""

    def __init__(self, where: str):
        self.where = where
        self.problems: list[Problem] = []

    def bad(self, sub: SubPath, message: str) -> None:
        self.problems.append((sub, message))

    def entry(self, entry: Any, sub: SubPath, top: bool = True) -> InitSpec | None:
        """One init_cfg mapping (`top`) or override mapping; None if it has problems."""
        if not isinstance(entry, Mapping):
            self.bad(sub, f"each init_cfg entry is a mapping with a type; got {entry!r}.")
            return None
        kind = entry.get("type")
        if kind is None and top and "checkpoint" in entry:
            # `{checkpoint: ...}` alone can only mean one thing (detcli has accepted it).
            entry, kind = {**entry, "type": "Pretrained"}, "Pretrained"
        if kind == "Pretrained" and not top:
            self.bad(
                (*sub, "type"),
                "an override cannot be Pretrained; give the child its own init_cfg, or load "
                "the parent's checkpoint with a prefix.",
            )
            return None
        if kind not in INIT_TYPES:
            got = f"unknown init type {kind!r}." if kind is not None else "has no type."
            hint = did_you_mean(str(kind), INIT_TYPES) if isinstance(kind, str) else ""
            self.bad((*sub, "type"), f"{got}{hint} Known types: {', '.join(INIT_TYPES)}.")
            return None
        own = PRETRAINED_KEYS if kind == "Pretrained" else (*FILL_KEYS, *FILL_ARGS[kind])
        # mmengine fills an override's whole child: it has a name, no layer, no nested override
        allowed = own if top else ("name", *(k for k in own if k not in ("layer", "override")))
        before = len(self.problems)
        for key in entry:
            if key not in allowed and key in own:
                self.bad(
                    (*sub, key),
                    f"an override fills every submodule of the child it names, so {key} has "
                    "no effect there; remove it, or give the child its own init_cfg.",
                )
            elif key not in allowed:
                takes = ", ".join(k for k in allowed if k != "type")
                hint = did_you_mean(str(key), allowed)
                self.bad((*sub, key), f"a {kind} init has no key {key!r}.{hint} It takes: {takes}.")
        spec = self.pretrained(entry, sub) if kind == "Pretrained" else self.fill(kind, entry, sub)
        if kind != "Pretrained" and top and not entry.get("layer") and "override" not in entry:
            self.bad(
                sub,
                f"a {kind} init with neither layer nor override changes no weight (as in "
                "mmengine); add layer (e.g. layer: Conv2d, or [Conv2d, Linear]) or "
                "override: {name: CHILD_ATTRIBUTE}.",
            )
        return spec if len(self.problems) == before else None

    def pretrained(self, entry: Mapping[str, Any], sub: SubPath) -> PretrainedSpec | None:
        checkpoint, prefix = entry.get("checkpoint"), entry.get("prefix")
        location = entry.get("map_location", "cpu")
        if not isinstance(checkpoint, str) or not checkpoint:
            self.bad(
                (*sub, "checkpoint"),
                "Pretrained needs checkpoint: a local .pth/.safetensors file or a hub name "
                "such as torchvision:resnet50 or timm:resnet50.a1_in1k.",
            )
        if prefix is not None and (not isinstance(prefix, str) or not prefix):
            self.bad((*sub, "prefix"), f"must be a key prefix such as backbone.; got {prefix!r}.")
        if location is not None and not isinstance(location, str):
            self.bad((*sub, "map_location"), f"must be a device name; got {location!r}.")
        if not isinstance(checkpoint, str) or not isinstance(prefix, (str, type(None))):
            return None
        # As mmengine: prefix `backbone` keeps `backbone.conv1.weight` as `conv1.weight`.
        dotted = prefix if not prefix or prefix.endswith(".") else prefix + "."
        return PretrainedSpec(checkpoint, dotted, location, _at(self.where, sub))

    def fill(self, kind: str, entry: Mapping[str, Any], sub: SubPath) -> FillSpec:
        args: dict[str, float | str] = {}
        for key, default in FILL_ARGS[kind].items():
            value = entry.get(key, default)
            if value is None:
                self.bad((*sub, key), f"a {kind} init needs {key} (a number).")
            elif key in CHOICES:
                if value not in CHOICES[key]:
                    hint = did_you_mean(str(value), CHOICES[key])
                    known = ", ".join(CHOICES[key])
                    self.bad((*sub, key), f"{value!r} is not one of {known}.{hint}")
                args[key] = str(value)
            elif self.number(value, (*sub, key)):
                args[key] = float(value)
        if float(args.get("std", 0.0)) < 0:
            self.bad((*sub, "std"), f"must be 0 or more; got {args['std']}.")
        a, b = args.get("a"), args.get("b")
        if isinstance(a, float) and isinstance(b, float) and kind != "Kaiming" and a >= b:
            self.bad((*sub, "b"), f"must be above a (a={a}, b={b}).")
        bias = 0.0
        if "bias" in entry and "bias_prob" in entry:
            self.bad((*sub, "bias_prob"), "give bias or bias_prob, not both.")
        elif "bias_prob" in entry:
            prob = entry["bias_prob"]
            if not self.number(prob, (*sub, "bias_prob")) or not 0 < prob < 1:
                self.bad((*sub, "bias_prob"), f"must be between 0 and 1; got {prob!r}.")
            else:  # a prior probability as a logit, so sigmoid(bias) = bias_prob (RetinaNet)
                bias = -math.log((1 - prob) / prob)
        elif self.number(entry.get("bias", 0.0), (*sub, "bias")):
            bias = float(entry.get("bias", 0.0))
        spec = FillSpec(kind, args, bias, self.layer(entry.get("layer"), (*sub, "layer")))
        spec = replace(spec, where=_at(self.where, sub))
        return replace(spec, override=self.overrides(entry.get("override"), spec, sub))

    def number(self, value: Any, sub: SubPath) -> bool:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        self.bad(sub, f"must be a number; got {value!r}.")
        return False

    def layer(self, value: Any, sub: SubPath) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else value
        if value is None or (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            return tuple(names or ())
        self.bad(sub, f"must be a class name (e.g. Conv2d) or a list of them; got {value!r}.")
        return ()

    def overrides(self, value: Any, parent: FillSpec, sub: SubPath) -> tuple[Override, ...]:
        if value is None:
            return ()
        at = (*sub, "override")
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        found: list[Override] = []
        for j, item in items:
            path = at if j is None else (*at, j)
            name = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(name, str) or not name:
                self.bad(
                    path,
                    "each override is a mapping with name, the child attribute it fills (e.g. "
                    "{name: fc_cls} or {name: fc_cls, type: Normal, std: 0.01}); "
                    f"got {item!r}.",
                )
            elif set(item) == {"name"}:  # mmengine: a bare name takes the entry's type and args
                found.append(Override(name, replace(parent, layer=(), where=_at(self.where, path))))
            elif "type" not in item:
                self.bad(
                    (*path, "type"),
                    "an override gives either name alone (the entry's own type and arguments) "
                    f"or a type with its arguments; got {dict(item)}.",
                )
            elif isinstance(fill := self.entry(item, path, top=False), FillSpec):
                found.append(Override(name, fill))
        return tuple(found)


def _read(value: Any, where: str) -> tuple[list[InitSpec], list[Problem]]:
    if value is None:
        return [], []
    reader = _Reader(where)
    if isinstance(value, Mapping):
        entries: list[tuple[SubPath, Any]] = [((), value)]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        entries = [((i,), entry) for i, entry in enumerate(value)]
    else:
        reader.bad((), f"must be a mapping with a type, a list of them, or null; got {value!r}.")
        entries = []
    specs = [reader.entry(entry, sub) for sub, entry in entries]
    return [s for s in specs if s is not None], reader.problems

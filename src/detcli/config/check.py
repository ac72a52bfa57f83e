"""`detcli check`: every problem of a merged config at once, each with its path and origin.

Nothing heavy is built: types are looked up in the registries and arguments compared with
constructor signatures (`Registry.signature`), so a typo costs seconds, not a failed run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detcli.config.loader import ResolvedConfig
from detcli.config.model_check import metric_problems, model_problems
from detcli.config.origins import ConfigPath, format_path
from detcli.config.paths import join_root
from detcli.config.pipeline_check import mask_problems, pipeline_problems
from detcli.config.schema import CHECKPOINT_SCHEMES, COMPONENT_PLACES, PATH_KEYS, Place
from detcli.config.settings import KNOWN_TOP_LEVEL_KEYS, RunSettings, collect_run_settings
from detcli.config.settings.schedule import schedule_warnings
from detcli.config.typecheck import component_slot, describe, matches
from detcli.data.coco_categories import class_problems, dataset_image_count
from detcli.registry import REGISTRIES, Registries
from detcli.suggest import close_names, did_you_mean


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (config path and file:line) and what.

    A `note` is not a problem: a key accepted with no effect in detcli, said so out loud.
    A `warning` is not one either: a config that runs but likely not as meant (a schedule
    longer than the run); `check` prints it and still passes.
    """

    path: ConfigPath
    message: str
    origin: str
    note: bool = False
    warning: bool = False

    @property
    def where(self) -> str:
        return format_path(self.path)


def check_config(resolved: ResolvedConfig, registries: Registries = REGISTRIES) -> list[Problem]:
    """All problems of `resolved` (empty when it is clean); call after `load_plugins()`."""
    checker = _Checker(resolved, registries)
    checker.run()
    return checker.problems


class _Checker:
    def __init__(self, resolved: ResolvedConfig, registries: Registries):
        self.resolved = resolved
        self.cfg = resolved.cfg
        self.registries = registries
        self.problems: list[Problem] = []

    def run(self) -> None:
        self._top_level_keys()
        settings, findings = collect_run_settings(self.cfg, self.resolved.origins)
        for finding in findings:
            self.report(finding.path, finding.message, note=finding.note)
        places = list(COMPONENT_PLACES)
        places += [Place(loader.dataset_path, "DATASETS") for loader in settings.loaders.values()]
        for place in places:
            value = self._get(place.path)
            if value is _MISSING or value is None:
                continue
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for index, item in items:
                path = place.path if index is None else (*place.path, index)
                self._component(path, item, place.kind, place.builder_keys)
        parts_ok = not any(p.path[:1] == ("model",) for p in self.problems)
        self._train_cfg_notes()
        self._num_classes(settings)
        datasets = [loader.dataset_path for loader in settings.loaders.values()]
        self._paths(self.cfg, (), skip=datasets)
        for loader in settings.loaders.values():
            self._dataset_paths(loader.dataset, loader.dataset_path)
            dataset = self._get(loader.dataset_path)
            for path, message in pipeline_problems(self.cfg.get("model"), dataset, loader):
                self.report(path, message)
            for path, message in mask_problems(dataset, loader.dataset_path):
                self.report(path, message)
            for path, message in class_problems(loader.dataset, loader.dataset_path):
                self.report(path, message)
        if parts_ok:  # the model's wiring is only worth checking when each part is valid
            for path, message in model_problems(self.cfg.get("model"), self.registries["MODELS"]):
                self.report(path, message)
        for path, message in metric_problems(self.cfg):
            self.report(path, message)
        for path, message in schedule_warnings(
            settings.schedule, settings.loop, _iters_per_epoch(settings)
        ):
            self.report(path, message, warning=True)

    def report(
        self, path: ConfigPath, message: str, *, note: bool = False, warning: bool = False
    ) -> None:
        origin = self.resolved.origin(path)
        origin_text = str(origin) if origin else ""
        self.problems.append(Problem(path, message, origin_text, note, warning))

    # -- components -------------------------------------------------------------------------

    def _component(
        self, path: ConfigPath, cfg: Any, kind: str, builder_keys: frozenset[str] = frozenset()
    ) -> None:
        registry = self.registries[kind]
        if not isinstance(cfg, dict):
            self.report(
                path, f"expected a {kind} component (a mapping with `type`), got {_show(cfg)}."
            )
            return
        if "type" not in cfg:
            self.report(path, f"this {kind} component has no `type` key.")
            self._opaque_children(path, cfg)
            return
        name = cfg["type"]
        type_path = (*path, "type")
        if not isinstance(name, str):
            self.report(type_path, f"`type` must be a {kind} type name, got {_show(name)}.")
            return
        if name not in registry:
            elsewhere = [r.kind for r in self.registries.find(name)]
            if elsewhere:
                self.report(
                    type_path,
                    f"{name!r} is a {' and '.join(elsewhere)} type, "
                    f"but this place needs a {kind} type.",
                )
            else:
                self.report(type_path, registry.unknown_message(name))
            self._opaque_children(path, cfg)  # still look inside: report every problem at once
            return
        signature = registry.signature(name)
        no_effect: dict[str, str] = getattr(registry.get(name), "NO_EFFECT_ARGS", {})
        for key, value in cfg.items():
            if key == "type":
                continue
            if key in builder_keys:  # read by the builder: only its registered parts are checked
                self._opaque((*path, key), value)
                continue
            arg = signature.arguments.get(key)
            if key in no_effect and arg is not None and value != arg.default:
                message = f"accepted, no effect in detcli: {no_effect[key]}"
                self.report((*path, key), message, note=True)
            arg = signature.arguments.get(key)
            if arg is None:
                if not signature.accepts_any:
                    accepted = ", ".join(signature.arguments) or "no arguments"
                    self.report(
                        (*path, key),
                        f"{name} has no argument {key!r}.{did_you_mean(key, signature.arguments)} "
                        f"It accepts: {accepted}.{self._left_by_merge(path, key)}",
                    )
                self._opaque((*path, key), value)
                continue
            self._argument((*path, key), value, arg.annotation, name)
        for arg in signature.arguments.values():
            if arg.required and arg.name not in cfg:
                self.report(
                    path,
                    f"{name} needs argument {arg.name!r} ({describe(arg.annotation)}), "
                    "which is not set.",
                )

    def _train_cfg_notes(self) -> None:
        """`train_cfg.{rpn,rcnn}.debug`: mmdet's switch, accepted and said to do nothing."""
        model = self.cfg.get("model")
        train = model.get("train_cfg") if isinstance(model, dict) else None
        if not isinstance(train, dict):
            return
        for section in ("rpn", "rcnn"):
            stage = train.get(section)
            if isinstance(stage, dict) and stage.get("debug"):
                self.report(
                    ("model", "train_cfg", section, "debug"),
                    "accepted, no effect in detcli: mmdet's debug switch saves nothing extra here.",
                    note=True,
                )

    def _left_by_merge(self, path: ConfigPath, key: str) -> str:
        """When `key` came from another file than the component's `type` (a base's argument
        kept by merging after the type was switched), how to replace instead of merge."""
        key_origin = self.resolved.origins.get((*path, key))
        type_origin = self.resolved.origins.get((*path, "type"))
        if key_origin is None or type_origin is None or key_origin.source == type_origin.source:
            return ""
        return (
            f" {key!r} comes from {key_origin} and `type` from {type_origin}: merging a mapping "
            "keeps the base's keys, so write `_delete_: true` in it to replace the base's "
            "mapping whole."
        )

    def _argument(self, path: ConfigPath, value: Any, hint: Any, owner: str) -> None:
        slot = component_slot(hint)
        if slot is not None:
            if value is None and matches(None, hint):
                return
            if slot.single and isinstance(value, dict):
                self._component(path, value, slot.kind)
                return
            if slot.many and isinstance(value, list):
                for i, item in enumerate(value):
                    self._component((*path, i), item, slot.kind)
                return
            if slot.nested and isinstance(value, list) and all(isinstance(v, list) for v in value):
                for i, group in enumerate(value):
                    for j, item in enumerate(group):
                        self._component((*path, i, j), item, slot.kind)
                return
        if not matches(value, hint):
            self.report(
                path, f"{owner} expects {describe(hint)} for {path[-1]!r}, got {_show(value)}."
            )
            return
        self._opaque(path, value)

    def _opaque(self, path: ConfigPath, value: Any) -> None:
        """Look inside a value no signature describes for `type`s that name a registered component.

        Such mappings are often layer settings (`norm_cfg: {type: BN}`, `nms: {type: nms}`) read
        by their owner, so an unknown name there is only reported when it is a near miss of a
        registered one (`MaxIOUAssigner` for `MaxIoUAssigner`).
        """
        if isinstance(value, list):
            for i, item in enumerate(value):
                self._opaque((*path, i), item)
            return
        if not isinstance(value, dict):
            return
        name = value.get("type")
        if isinstance(name, str):
            holders = self.registries.find(name)
            if len(holders) == 1:
                self._component(path, value, holders[0].kind)
                return
            if not holders:
                near = close_names(name, self._all_names(), n=1, cutoff=0.85)
                if near:
                    self.report(
                        (*path, "type"), f"unknown type {name!r}. Did you mean {near[0]!r}?"
                    )
        self._opaque_children(path, value)

    def _opaque_children(self, path: ConfigPath, mapping: dict[Any, Any]) -> None:
        for key, child in mapping.items():
            if key != "type":
                self._opaque((*path, key), child)

    def _all_names(self) -> list[str]:
        return [entry.name for registry in self.registries for entry in registry]

    # -- settings outside components ---------------------------------------------------------

    def _top_level_keys(self) -> None:
        for key in self.cfg:
            if key in KNOWN_TOP_LEVEL_KEYS or not isinstance(key, str):
                continue
            near = close_names(key, KNOWN_TOP_LEVEL_KEYS, n=1, cutoff=0.8)
            if near:
                self.report(
                    (key,),
                    f"unknown top-level key {key!r}; it would be ignored. "
                    f"Did you mean {near[0]!r}?",
                )

    def _num_classes(self, settings: RunSettings) -> None:
        """The head's `num_classes` must equal the number of `classes` of every split."""
        lists = {p: c for p, c in self._class_lists(settings) if isinstance(c, list)}
        if not lists:
            return
        (first_path, first), *rest = lists.items()
        for path, classes in rest:
            if classes != first:
                self.report(
                    path, f"classes differ from {format_path(first_path)}: {_diff(first, classes)}."
                )
        for path, value in _find_key(self.cfg.get("model"), "num_classes", ("model",)):
            if "rpn_head" in path:  # the RPN scores objectness: one class whatever the dataset
                continue
            if isinstance(value, int) and value != len(first):
                self.report(
                    path,
                    f"num_classes is {value}, but {format_path(first_path)} lists "
                    f"{len(first)} classes; set it to {len(first)} (a mismatch trains a head "
                    "that cannot name your classes).",
                )

    def _class_lists(self, settings: RunSettings) -> list[tuple[ConfigPath, Any]]:
        """`classes` (2.x) and `metainfo.classes` (3.x) of every split's datasets."""
        found: list[tuple[ConfigPath, Any]] = []
        for loader in settings.loaders.values():
            found += _find_key(self._get(loader.dataset_path), "classes", loader.dataset_path)
        return found

    def _dataset_paths(self, dataset: Any, path: ConfigPath) -> None:
        """A dataset's annotation file and image folder, joined with its `data_root` (both
        spellings join as MMDetection does), must exist."""
        if not isinstance(dataset, dict):
            return
        if isinstance(dataset.get("dataset"), dict):
            self._dataset_paths(dataset["dataset"], (*path, "dataset"))
            return
        for i, part in enumerate(dataset.get("datasets") or []):
            self._dataset_paths(part, (*path, "datasets", i))
        if "ann_file" not in dataset:
            return
        root = dataset.get("data_root")
        ann = dataset["ann_file"]
        if isinstance(ann, str) and ann:
            self._path_exists((*path, "ann_file"), join_root(root, ann), "file")
        for key in ("img_prefix", ("data_prefix", "img")):
            keys = key if isinstance(key, tuple) else (key,)
            value: Any = dataset
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            if isinstance(value, str):
                self._path_exists((*path, *keys), join_root(root, value), "dir")
        self._paths(dataset, path, skip=[(*path, "ann_file"), (*path, "img_prefix")])

    def _paths(self, value: Any, path: ConfigPath, skip: list[ConfigPath] = ()) -> None:  # type: ignore[assignment]
        """Files and folders named in the config must exist (relative paths: the working dir)."""
        if path in skip:
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                self._paths(item, (*path, i), skip)
            return
        if not isinstance(value, dict):
            return
        for key, child in value.items():
            child_path = (*path, key)
            kind = PATH_KEYS.get(key) if isinstance(key, str) else None
            if key == "checkpoint" and path and path[-1] == "init_cfg":
                kind = "file"
            if kind and child and child_path not in skip:
                for p, item in (
                    [(child_path, child)]
                    if not isinstance(child, list)
                    else [((*child_path, i), c) for i, c in enumerate(child)]
                ):
                    self._path_exists(p, item, kind)
            else:
                self._paths(child, child_path, skip)

    def _path_exists(self, path: ConfigPath, value: Any, kind: str) -> None:
        if not isinstance(value, str) or value.startswith(CHECKPOINT_SCHEMES):
            return
        if path[-1] == "resume_from" and value == "auto":
            return
        if path[-2:] == ("init_cfg", "checkpoint") and "://" in value:
            return  # MMDetection's hub names (open-mmlab://, torchvision://): the model check
        p = Path(value).expanduser()
        ok = p.is_file() if kind == "file" else p.is_dir()
        if not ok:
            what = "file" if kind == "file" else "folder"
            state = f"is not a {what}" if p.exists() else "does not exist"
            self.report(path, f"{what} {value!r} {state} (relative paths start at {Path.cwd()}).")

    def _get(self, path: ConfigPath) -> Any:
        node: Any = self.cfg
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return _MISSING
        return node


_MISSING = object()


def _iters_per_epoch(settings: RunSettings) -> int | None:
    """Training iterations per epoch (one process) from the train file's image count and the
    batch size; None when the count is not known cheaply."""
    train = settings.loaders.get("train")
    if train is None:
        return None
    images = dataset_image_count(train.dataset)
    if not images:
        return None
    batch = int(train.batch_size)
    batches = images // batch if train.drop_last else -(-images // batch)
    return max(int(batches), 1)


def _find_key(value: Any, key: str, path: ConfigPath) -> list[tuple[ConfigPath, Any]]:
    """Every (path, value) of `key` inside `value`, at any depth."""
    found: list[tuple[ConfigPath, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(((*path, k), v))
            else:
                found += _find_key(v, key, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _find_key(v, key, (*path, i))
    return found


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _diff(a: list[Any], b: list[Any]) -> str:
    lines = list(difflib.ndiff([str(x) for x in a], [str(x) for x in b]))
    changed = [line for line in lines if line[:1] in "+-"]
    return "; ".join(changed[:6]) if changed else f"same names, different order: {b}"

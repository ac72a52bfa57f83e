"""From a `model:` config mapping to a built detector: the one place config becomes a model.

Two steps, each in one function:
- `route_run_cfgs`: the detector's `train_cfg` / `test_cfg` sections (mmdet's shape: `rpn`,
  `rpn_proposal`, `rcnn`) are read into typed settings, assigners and samplers built, and each
  head given its own as a constructor argument (`rpn_head.train_cfg`, `roi_head.test_cfg`, the
  detector's `train_proposals`).
- `MODELS.build`: every part is built bottom-up from its mapping, and receives its parts built
  (a config key is the constructor argument of the same name).

`build_model` does both. torch is imported by the parts themselves, when they are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from detcli.errors import ModelError
from detcli.registry import MODELS, Registry

if TYPE_CHECKING:
    from torch import nn

    from detcli.models.run_cfgs import StageTrainCfg

# Keys of a detector's mapping read here, not passed to its constructor as they are.
RUN_CFG_KEYS = frozenset({"train_cfg", "test_cfg"})
TRAIN_SECTIONS = ("rpn", "rpn_proposal", "rcnn")
TEST_SECTIONS = ("rpn", "rcnn")


def build_model(cfg_model: Mapping[str, Any], models: Registry = MODELS) -> nn.Module:
    """The detector a `model:` section describes (a FasterRCNN for the reference configs).

    Backbone weights stay random until `model.init_weights()` loads `init_cfg`; evaluation
    and `load_from` need no network that way.
    """
    from torch import nn

    import detcli.models  # noqa: F401  (registers the built-in parts)
    from detcli.models.init_cfg import read_init_cfg

    model = models.build(route_run_cfgs(cfg_model, models), where="model")
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model.type {cfg_model.get('type')!r} built a {type(model).__name__}, not a "
            "torch.nn.Module detector."
        )
    # Every part's init_cfg is read now, so a mistake fails the build, not the first run.
    for name, part in model.named_modules():
        init_cfg = getattr(part, "init_cfg", None)
        if init_cfg is not None:
            read_init_cfg(init_cfg, f"model.{name}.init_cfg" if name else "model.init_cfg")
    return model


def route_run_cfgs(cfg_model: Mapping[str, Any], models: Registry = MODELS) -> dict[str, Any]:
    """`cfg_model` with its `train_cfg` / `test_cfg` handed, typed, to the heads that use them.

    A two-stage detector (`rpn_head` and `roi_head`): `train_cfg.rpn` and `test_cfg.rpn` go to
    the RPN head, `train_cfg.rcnn` (a list for a cascade, one per stage) and `test_cfg.rcnn` to
    the RoI head, `train_cfg.rpn_proposal` to the detector (`train_proposals`). Another detector
    (a plugin's) gets them as they are.
    """
    from detcli.models.run_cfgs import ProposalCfg, RCNNTestCfg, read_cfg

    cfg = dict(cfg_model)
    if "rpn_head" not in cfg or "roi_head" not in cfg:
        return cfg
    train = _sections(cfg.pop("train_cfg", None), TRAIN_SECTIONS, "model.train_cfg")
    test = _sections(cfg.pop("test_cfg", None), TEST_SECTIONS, "model.test_cfg")
    rpn = dict(cfg["rpn_head"])
    roi = dict(cfg["roi_head"])
    rpn["test_cfg"] = read_cfg(ProposalCfg, test.get("rpn"), "model.test_cfg.rpn")
    roi["test_cfg"] = read_cfg(RCNNTestCfg, test.get("rcnn"), "model.test_cfg.rcnn")
    if "rpn" in train:
        rpn["train_cfg"] = stage_train_cfg(train["rpn"], "model.train_cfg.rpn", models)
    if "rcnn" in train:
        where = "model.train_cfg.rcnn"
        rcnn = train["rcnn"]
        roi["train_cfg"] = (  # a cascade: one per stage
            [stage_train_cfg(c, f"{where}.{i}", models) for i, c in enumerate(rcnn)]
            if isinstance(rcnn, list)
            else stage_train_cfg(rcnn, where, models)
        )
    if "rpn_proposal" in train:
        where = "model.train_cfg.rpn_proposal"
        cfg["train_proposals"] = read_cfg(ProposalCfg, train["rpn_proposal"], where)
    cfg["rpn_head"], cfg["roi_head"] = rpn, roi
    return cfg


def stage_train_cfg(cfg: Any, where: str, models: Registry = MODELS) -> StageTrainCfg:
    """`train_cfg.rpn` or `train_cfg.rcnn`, with its assigner and sampler built."""
    from detcli.models.run_cfgs import StageTrainCfg, read_cfg

    if not isinstance(cfg, Mapping) or "assigner" not in cfg or "sampler" not in cfg:
        raise ModelError(
            f"{where} needs an `assigner` and a `sampler` (e.g. MaxIoUAssigner, RandomSampler) "
            "to train; see configs/_base_/models/faster_rcnn_r50_fpn.yaml."
        )
    values = dict(cfg)
    values["assigner"] = models.build(cfg["assigner"], where=f"{where}.assigner")
    values["sampler"] = models.build(cfg["sampler"], where=f"{where}.sampler")
    return read_cfg(StageTrainCfg, values, where)


def _sections(cfg: Any, allowed: Sequence[str], where: str) -> dict[str, Any]:
    if cfg is None:
        return {}
    if not isinstance(cfg, Mapping):
        raise ModelError(f"{where} must be a mapping of {', '.join(allowed)}, got {cfg!r}.")
    extra = [k for k in cfg if k not in allowed]
    if extra:
        raise ModelError(f"{where} has unknown sections {extra}; it takes {', '.join(allowed)}.")
    return {k: v for k, v in cfg.items() if v is not None}

"""`check_config`: every problem at once, with its config path and origin."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from detcli.config import resolve_config
from detcli.config.check import check_config
from detcli.registry import ModelCfg, Registries, Registry, TransformCfg


class FPN:
    def __init__(
        self,
        in_channels: list[int],
        out_channels: int,
        num_outs: int = 5,
        add_extra_convs: bool | str = False,
    ):
        pass


class ResNet:
    def __init__(
        self,
        depth: Literal[18, 34, 50, 101, 152] = 50,
        out_indices: tuple[int, ...] = (0, 1, 2, 3),
        norm_cfg: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | None = None,
    ):
        pass


class BBoxHead:
    def __init__(self, num_classes: int = 80, loss_cls: ModelCfg | None = None):
        pass


class CrossEntropyLoss:
    def __init__(self, use_sigmoid: bool = False, loss_weight: float = 1.0):
        pass


class MaxIoUAssigner:
    def __init__(self, pos_iou_thr: float, neg_iou_thr: float):
        pass


class Detector:
    def __init__(
        self,
        backbone: ModelCfg,
        neck: ModelCfg | None = None,
        rpn_head: ModelCfg | None = None,
        bbox_head: ModelCfg | None = None,
        train_cfg: dict[str, Any] | None = None,
    ):
        pass


class RPNHead:
    def __init__(self, num_classes: int = 1):
        pass


class RandomFlip:
    def __init__(self, flip_ratio: float = 0.5):
        pass


class Resize:
    def __init__(self, img_scale: list[int] | list[list[int]], keep_ratio: bool = True):
        pass


class CocoDataset:
    def __init__(
        self,
        ann_file: str,
        img_prefix: str,
        pipeline: list[TransformCfg],
        classes: list[str] | None = None,
    ):
        pass


class SGD:
    def __init__(self, params: Any, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        pass


class LoggerHook:
    def __init__(self, interval: int = 50, **kwargs: Any):
        pass


@pytest.fixture
def registries() -> Registries:
    regs = Registries(
        Registry("MODELS"),
        Registry("TRANSFORMS"),
        Registry("DATASETS"),
        Registry("HOOKS"),
        Registry("OPTIMIZERS", injected=("params",)),
        Registry("SCHEDULERS"),
        Registry("METRICS"),
    )
    for cls in (FPN, ResNet, BBoxHead, CrossEntropyLoss, MaxIoUAssigner, Detector, RPNHead):
        regs.MODELS.register(cls)
    regs.TRANSFORMS.register(RandomFlip)
    regs.TRANSFORMS.register(Resize)
    regs.DATASETS.register(CocoDataset)
    regs.OPTIMIZERS.register(SGD)
    regs.HOOKS.register(LoggerHook)
    return regs


@pytest.fixture
def clean_config(write, tmp_path):
    (tmp_path / "images").mkdir()
    # check reads the annotation file's categories to compare them with `classes`
    write(
        "ann.json",
        '{"images": [], "annotations": [], "categories": '
        '[{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]}',
    )
    return write(
        "exp.yaml",
        f"""
        classes: [cat, dog]
        model:
          type: Detector
          backbone: {{type: ResNet, depth: 50, norm_cfg: {{type: BN, requires_grad: true}}}}
          neck: {{type: FPN, in_channels: [256, 512], out_channels: 256}}
          rpn_head: {{type: RPNHead, num_classes: 1}}
          bbox_head:
            type: BBoxHead
            num_classes: 2
            loss_cls: {{type: CrossEntropyLoss, loss_weight: 1}}
          train_cfg:
            assigner: {{type: MaxIoUAssigner, pos_iou_thr: 0.7, neg_iou_thr: 0.3}}
            nms: {{type: nms, iou_threshold: 0.7}}
        data:
          samples_per_gpu: 2
          train:
            type: CocoDataset
            ann_file: {tmp_path / "ann.json"}
            img_prefix: {tmp_path / "images"}
            classes: ${{classes}}
            pipeline:
              - {{type: Resize, img_scale: [512, 512]}}
              - {{type: RandomFlip, flip_ratio: 0.5}}
        optimizer: {{type: SGD, lr: 0.02, momentum: 0.9, paramwise_cfg: {{norm_decay_mult: 0.0}}}}
        log_config:
          interval: 50
          hooks: [{{type: LoggerHook, anything: 1}}]
        runner: {{type: EpochBasedRunner, max_epochs: 12}}
    """,
    )


def _problems(path, registries, overrides=()):
    return {p.where: p for p in check_config(resolve_config(path, overrides), registries)}


def test_clean_config_has_no_problems(clean_config, registries):
    assert _problems(clean_config, registries) == {}


def test_near_miss_type_names_are_suggested(clean_config, registries):
    problems = _problems(
        clean_config, registries, ["model.neck.type=fPn", "data.train.pipeline.1.type=Randomflip"]
    )
    assert "Did you mean 'FPN'?" in problems["model.neck.type"].message
    assert "Did you mean 'RandomFlip'?" in problems["data.train.pipeline.1.type"].message
    assert problems["model.neck.type"].origin == "--set model.neck.type=fPn"


def test_type_from_the_wrong_registry_is_named(clean_config, registries):
    problems = _problems(clean_config, registries, ["model.neck.type=RandomFlip"])
    assert (
        "'RandomFlip' is a TRANSFORMS type, but this place needs a MODELS type"
        in problems["model.neck.type"].message
    )


def test_unknown_and_missing_arguments(clean_config, registries):
    problems = _problems(
        clean_config, registries, ["model.neck={_delete_: true, type: FPN, out_chanels: 256}"]
    )
    assert (
        "FPN has no argument 'out_chanels'. Did you mean 'out_channels'"
        in problems["model.neck.out_chanels"].message
    )
    missing = problems["model.neck"].message
    assert "needs argument 'in_channels'" in missing or "needs argument 'out_channels'" in missing


def test_missing_arguments_all_reported(clean_config, registries):
    problems = check_config(
        resolve_config(clean_config, ["model.neck={_delete_: true, type: FPN}"]), registries
    )
    messages = [p.message for p in problems if p.where == "model.neck"]
    assert len(messages) == 2


def test_wrong_value_types(clean_config, registries):
    problems = _problems(
        clean_config,
        registries,
        [
            "model.neck.out_channels='256'",
            "model.backbone.depth=51",
            "optimizer.lr=abc",
            "data.train.pipeline.0.img_scale=512",
            "model.bbox_head.loss_cls.use_sigmoid=1",
            "data.samples_per_gpu=2.5",
            "runner.type=EpochRunner",
        ],
    )
    assert (
        "FPN expects int for 'out_channels', got str '256'"
        in problems["model.neck.out_channels"].message
    )
    assert "50" in problems["model.backbone.depth"].message
    assert "got str 'abc'" in problems["optimizer.lr"].message
    assert "list[int] | list[list[int]]" in problems["data.train.pipeline.0.img_scale"].message
    assert "bool" in problems["model.bbox_head.loss_cls.use_sigmoid"].message
    assert "data.samples_per_gpu must be int" in problems["data.samples_per_gpu"].message
    assert "'EpochBasedRunner'" in problems["runner.type"].message


def test_num_classes_must_match_classes(clean_config, registries):
    problems = _problems(clean_config, registries, ["classes=[cat, dog, bird]"])
    assert set(problems) == {"model.bbox_head.num_classes"}  # the RPN's single class is fine
    assert (
        "num_classes is 2, but data.train.classes lists 3 classes"
        in problems["model.bbox_head.num_classes"].message
    )


def test_classes_differing_between_splits(clean_config, registries):
    problems = _problems(
        clean_config,
        registries,
        [
            "data.val={type: CocoDataset, ann_file: x, img_prefix: y, pipeline: [], classes: [cat, bird]}"
        ],
    )
    assert "classes differ from data.train.classes" in problems["data.val.classes"].message


def test_missing_files_are_reported(clean_config, registries, tmp_path):
    problems = _problems(
        clean_config,
        registries,
        [
            "data.train.ann_file=nope.json",
            f"data.train.img_prefix={tmp_path / 'ann.json'}",
            "load_from=ckpt.pth",
            "resume_from=auto",
            "model.backbone.init_cfg={type: Pretrained, checkpoint: w.pth}",
            "optimizer.weight_decay=0.1",
        ],
    )
    assert "file 'nope.json' does not exist" in problems["data.train.ann_file"].message
    assert "is not a folder" in problems["data.train.img_prefix"].message
    assert "ckpt.pth" in problems["load_from"].message
    assert "resume_from" not in problems
    assert "w.pth" in problems["model.backbone.init_cfg.checkpoint"].message
    problems = _problems(
        clean_config, registries, ["model.backbone.init_cfg={checkpoint: 'timm:resnet18'}"]
    )
    assert problems == {}


def test_near_miss_inside_opaque_settings(clean_config, registries):
    problems = _problems(clean_config, registries, ["model.train_cfg.assigner.type=MaxIOUAssigner"])
    assert "Did you mean 'MaxIoUAssigner'?" in problems["model.train_cfg.assigner.type"].message
    problems = _problems(clean_config, registries, ["model.train_cfg.assigner.pos_iou_thr=high"])
    assert (
        "MaxIoUAssigner expects float" in problems["model.train_cfg.assigner.pos_iou_thr"].message
    )


def test_top_level_typo(clean_config, registries):
    problems = _problems(clean_config, registries, ["optimzer={type: SGD}", "my_variable=1"])
    assert set(problems) == {"optimzer"}
    assert "Did you mean 'optimizer'?" in problems["optimzer"].message


def test_all_problems_reported_at_once_with_origins(clean_config, registries):
    problems = check_config(
        resolve_config(
            clean_config,
            [
                "model.type=Detectr",
                "model.neck.type=fPn",
                "data.train.pipeline.0.type=Rezise",
                "optimizer.lr=x",
                "data.train.ann_file=missing.json",
                "classes=[a]",
            ],
        ),
        registries,
    )
    where = {p.where for p in problems}
    assert {
        "model.type",
        "model.neck.type",
        "data.train.pipeline.0.type",
        "optimizer.lr",
        "data.train.ann_file",
        "model.bbox_head.num_classes",
    } <= where
    # inside an unknown model type, nested components are still checked
    assert all(p.origin for p in problems)


def test_component_without_type_and_non_mapping(clean_config, registries):
    problems = _problems(
        clean_config, registries, ["model.neck={_delete_: true, out_channels: 1}", "optimizer=3"]
    )
    assert "has no `type` key" in problems["model.neck"].message
    assert "expected a OPTIMIZERS component" in problems["optimizer"].message

"""Run settings: each MMDetection 3.x key is read (and reaches what it configures), the 2.x
spelling gives the same settings, and one setting given in both spellings is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from detcli.config import resolve_config
from detcli.config.settings import collect_run_settings, read_run_settings
from detcli.errors import ConfigError

DATASET = {"type": "CocoDataset", "ann_file": "a.json", "pipeline": []}
R50_3X = (
    Path(__file__).resolve().parents[2]
    / "configs/mmdet3/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.yaml"
)


def over_r50_3x(path: Path, text: str) -> Path:
    """A config file at `path`: the 3.x R50-FPN reference config with `text` on top."""
    path.write_text(f"_base_: {R50_3X}\n{text}", encoding="utf-8")
    return path


def settings(cfg):
    return read_run_settings(cfg)


def problems(cfg):
    return [f.message for f in collect_run_settings(cfg)[1] if not f.note]


def notes(cfg):
    return {".".join(map(str, f.path)) for f in collect_run_settings(cfg)[1] if f.note}


def test_3x_loader_keys_become_loader_settings():
    s = settings(
        {
            "train_dataloader": {
                "batch_size": 3,
                "num_workers": 1,
                "persistent_workers": True,
                "pin_memory": True,
                "drop_last": True,
                "prefetch_factor": 4,
                "sampler": {"type": "DefaultSampler", "shuffle": True},
                "batch_sampler": {"type": "AspectRatioBatchSampler"},
                "dataset": DATASET,
            },
            "val_dataloader": {
                "batch_size": 2,
                "sampler": {"type": "DefaultSampler", "shuffle": False},
                "dataset": DATASET,
            },
            "test_dataloader": {
                "sampler": {"type": "InfiniteSampler"},
                "dataset": DATASET,
            },
        }
    )
    train, val, test = s.loaders["train"], s.loaders["val"], s.loaders["test"]
    assert (train.batch_size, train.num_workers, train.persistent_workers) == (3, 1, True)
    assert (train.pin_memory, train.drop_last, train.prefetch_factor) == (True, True, 4)
    assert train.sampler == "group" and train.group_by_aspect_ratio and train.spelling == "3.x"
    assert (val.batch_size, val.sampler, val.num_workers) == (2, "sequential", 0)
    assert test.sampler == "infinite"
    assert train.dataset_path == ("train_dataloader", "dataset")
    assert s.spelling == "3.x"


def test_3x_shuffle_without_aspect_ratio_batches_is_a_plain_shuffle():
    cfg = {"train_dataloader": {"sampler": {"type": "DefaultSampler"}, "dataset": DATASET}}
    assert settings(cfg).loaders["train"].sampler == "random"


def test_3x_datasets_filter_nothing_unless_filter_cfg_says_so():
    plain = settings({"train_dataloader": {"dataset": DATASET}}).loaders["train"].dataset
    assert plain["filter_cfg"] is None  # mmengine: no filter_cfg, no filtering
    given = {**DATASET, "filter_cfg": {"filter_empty_gt": True, "min_size": 32}}
    kept = settings({"train_dataloader": {"dataset": given}}).loaders["train"].dataset
    assert kept["filter_cfg"] == {"filter_empty_gt": True, "min_size": 32}
    wrapped = {"type": "RepeatDataset", "times": 2, "dataset": DATASET}
    inner = settings({"train_dataloader": {"dataset": wrapped}}).loaders["train"].dataset
    assert inner["dataset"]["filter_cfg"] is None


def test_2x_split_loader_wins_over_the_shared_one_and_is_read_once():
    data = {
        "samples_per_gpu": 2,
        "workers_per_gpu": 3,
        "train_dataloader": {"samples_per_gpu": 5},
        "train": DATASET,
        "val": DATASET,
    }
    s = settings({"data": data})
    assert s.loaders["train"].batch_size == 5 and s.loaders["train"].num_workers == 3
    assert s.loaders["val"].batch_size == 1  # MMDetection 2.x evaluates one image per GPU
    assert s.loaders["train"].sampler == "group" and s.loaders["val"].sampler == "sequential"


def test_loop_from_either_spelling():
    v2 = settings({"runner": {"type": "EpochBasedRunner", "max_epochs": 8}})
    v3 = settings({"train_cfg": {"type": "EpochBasedTrainLoop", "max_epochs": 8}})
    assert (v2.loop.by_epoch, v2.loop.max_epochs) == (v3.loop.by_epoch, v3.loop.max_epochs)
    it = settings(
        {"train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 90, "val_interval": 30}}
    )
    assert (it.loop.by_epoch, it.loop.max_iters, it.loop.val_interval) == (False, 90, 30)
    inferred = settings({"train_cfg": {"max_iters": 50}})  # mmengine infers the loop
    assert inferred.loop.by_epoch is False and inferred.loop.max_iters == 50


def test_top_level_train_cfg_with_rpn_is_model_settings():
    """MMDetection 1.x / early 2.x kept RPN/R-CNN settings at the top: decided by content."""
    cfg = {
        "model": {"type": "FasterRCNN"},
        "train_cfg": {"rpn": {"debug": False}},
        "runner": {"max_epochs": 2},
    }
    s = settings(cfg)
    assert s.model["train_cfg"] == {"rpn": {"debug": False}} and s.loop.max_epochs == 2
    assert s.spelling == "2.x"


def test_one_setting_in_both_spellings_is_an_error_naming_both(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "runner: {type: EpochBasedRunner, max_epochs: 12}\n"
        "train_cfg: {type: EpochBasedTrainLoop, max_epochs: 8}\n",
        encoding="utf-8",
    )
    resolved = resolve_config(path)
    with pytest.raises(ConfigError) as err:
        read_run_settings(resolved.cfg, resolved.origins)
    text = str(err.value)
    assert f"runner.max_epochs ({path}:1)" in text and f"train_cfg.max_epochs ({path}:2)" in text
    both = {
        "data": {"samples_per_gpu": 2, "train": DATASET},
        "train_dataloader": {"dataset": DATASET},
    }
    assert any("data.train" in m and "ambiguous" in m for m in problems(both))
    clip = {
        "optimizer": {"type": "SGD", "lr": 0.1},
        "optimizer_config": {"grad_clip": {"max_norm": 1}},
        "optim_wrapper": {"clip_grad": {"max_norm": 2}},
    }
    assert any("optim_wrapper.clip_grad" in m for m in problems(clip))


def test_unknown_keys_get_the_near_name_or_the_other_spelling():
    assert any("Did you mean 'max_epochs'" in m for m in problems({"runner": {"max_epoch": 3}}))
    loader = {"train_dataloader": {"samples_per_gpu": 2, "dataset": DATASET}}
    assert any("other MMDetection spelling" in m and "batch_size" in m for m in problems(loader))
    hooks = {"default_hooks": {"checkpoint": {"type": "CheckpointHook", "max_keep_ckpt": 2}}}
    assert any("max_keep_ckpts" in m for m in problems(hooks))


def test_optim_wrapper_and_auto_scale_lr():
    s = settings(
        {
            "optim_wrapper": {
                "type": "AmpOptimWrapper",
                "optimizer": {"type": "SGD", "lr": 0.02},
                "clip_grad": {"max_norm": 35, "norm_type": 2},
                "accumulative_counts": 4,
                "paramwise_cfg": {"norm_decay_mult": 0.0, "bypass_duplicate": True},
                "loss_scale": 512.0,
            },
            "auto_scale_lr": {"enable": True, "base_batch_size": 16},
        }
    )
    optim = s.optim
    assert optim.amp and optim.loss_scale == 512.0 and optim.accumulative_counts == 4
    assert optim.clip_grad == {"max_norm": 35, "norm_type": 2}
    assert optim.paramwise_cfg == {"norm_decay_mult": 0.0, "bypass_duplicate": True}
    scaled, line = optim.scaled(8)
    assert scaled.optimizer["lr"] == pytest.approx(0.01) and "0.01" in line
    cumulative = settings(
        {
            "optimizer": {"type": "SGD", "lr": 0.1},
            "optimizer_config": {"type": "GradientCumulativeOptimizerHook", "cumulative_iters": 3},
        }
    )
    assert cumulative.optim.accumulative_counts == 3


def test_default_hooks_logger_and_visualization():
    s = settings(
        {
            "default_hooks": {
                "logger": {"type": "LoggerHook", "interval": 7},
                "checkpoint": {
                    "type": "CheckpointHook",
                    "interval": 2,
                    "by_epoch": True,
                    "max_keep_ckpts": 3,
                    "save_best": "coco/bbox_mAP",
                    "rule": "greater",
                    "save_last": False,
                    "out_dir": "elsewhere",
                },
                "visualization": {"type": "DetVisualizationHook", "draw": True, "interval": 5},
            },
            "log_processor": {"window_size": 3},
            "visualizer": {
                "type": "DetLocalVisualizer",
                "vis_backends": [{"type": "TensorboardVisBackend"}],
            },
        }
    )
    hooks = s.hooks
    assert hooks.checkpoint == {
        "interval": 2,
        "by_epoch": True,
        "max_keep_ckpts": 3,
        "save_best": "coco/bbox_mAP",
        "rule": "greater",
        "save_last": False,
    }  # out_dir has no effect in detcli: not passed on, and `check` notes it
    assert [h["type"] for h in hooks.loggers] == ["TextLoggerHook", "TensorboardLoggerHook"]
    assert {h["interval"] for h in hooks.loggers} == {7}
    assert {h["window_size"] for h in hooks.loggers} == {3}
    assert hooks.visualization == {"type": "DetVisualizationHook", "draw": True, "interval": 5}


def test_without_tensorboard_backend_no_tensorboard_hook():
    s = settings(
        {
            "default_hooks": {"logger": {"type": "LoggerHook", "interval": 5}},
            "vis_backends": [{"type": "LocalVisBackend"}],
        }
    )
    assert [h["type"] for h in s.hooks.loggers] == ["TextLoggerHook"]


def test_evaluation_from_either_spelling():
    data3 = {"train_dataloader": {"dataset": DATASET}, "val_dataloader": {"dataset": DATASET}}
    s = settings(
        {
            **data3,
            "train_cfg": {"max_epochs": 6, "val_interval": 2, "val_begin": 3},
            "val_evaluator": [{"type": "CocoMetric", "metric": "bbox", "classwise": False}],
            "test_evaluator": {
                "type": "CocoMetric",
                "format_only": True,
                "outfile_prefix": "out/x",
            },
        }
    )
    ev = s.evaluation
    assert ev.during_training and (ev.interval, ev.begin, ev.start) == (2, 3, None)
    assert ev.metrics_for("val") == [{"type": "CocoMetric", "metric": "bbox", "classwise": False}]
    assert ev.outputs("test") == (True, "out/x") and ev.outputs("val") == (False, None)
    v2 = settings(
        {
            "data": {"train": DATASET, "val": DATASET},
            "evaluation": {"interval": 2, "start": 3, "metric": "bbox", "jsonfile_prefix": "r/x"},
        }
    )
    assert (v2.evaluation.interval, v2.evaluation.start) == (2, 3)
    assert v2.evaluation.metrics_for("val") == [
        {"type": "CocoMetric", "metric": "bbox", "outfile_prefix": "r/x"}
    ]
    assert any("no val split" in m for m in problems({"val_evaluator": {"type": "CocoMetric"}}))


def test_environment_from_either_spelling():
    v3 = settings(
        {
            "env_cfg": {"cudnn_benchmark": True, "dist_cfg": {"backend": "gloo"}},
            "randomness": {"seed": 7, "deterministic": True},
            "resume": True,
            "load_from": "w/epoch_3.pth",
            "log_level": "warning",
        }
    )
    env = v3.env
    assert (env.cudnn_benchmark, env.dist_backend, env.seed, env.deterministic) == (
        True,
        "gloo",
        7,
        True,
    )
    assert (
        env.resume == "w/epoch_3.pth" and env.log_level == "WARNING"
    )  # mmengine: resume load_from
    assert settings({"resume": True}).env.resume == "auto"
    v2 = settings({"dist_params": {"backend": "gloo"}, "seed": 7, "resume_from": "a.pth"})
    assert (v2.env.dist_backend, v2.env.seed, v2.env.resume) == ("gloo", 7, "a.pth")


def test_keys_with_no_effect_are_notes_not_problems():
    cfg = {
        "default_scope": "mmdet",
        "backend_args": None,
        "gpu_ids": [0],
        "env_cfg": {"mp_cfg": {"mp_start_method": "fork", "opencv_num_threads": 0}},
        "train_dataloader": {"dataset": DATASET, "collate_fn": {"type": "pseudo_collate"}},
    }
    found = notes(cfg)
    assert {"default_scope", "gpu_ids", "env_cfg.mp_cfg.mp_start_method"} <= found
    assert "train_dataloader.collate_fn" in found and problems(cfg) == []


def test_check_says_which_spelling_fits_a_2x_habit_in_a_3x_pipeline(cli, tmp_path):
    path = over_r50_3x(
        tmp_path / "mixed.yaml",
        "train_pipeline:\n"
        "  - {type: LoadImageFromFile}\n"
        "  - {type: Resize, img_scale: [1333, 800], keep_ratio: true}\n"
        "  - {type: RandomFlip, flip_ratio: 0.5}\n"
        "  - {type: Normalize, mean: [1, 2, 3], std: [1, 1, 1]}\n"
        "  - {type: Collect, keys: [img]}\n",
    )
    result = cli("check", str(path))
    out = " ".join(result.out.split())
    assert result.code == 2
    assert "Resize.img_scale is MMDetection 2.x's spelling" in out and "there it is scale" in out
    assert "RandomFlip.flip_ratio" in out and "there it is prob" in out
    assert "normalised twice" in out and "Collect is an MMDetection 2.x transform" in out


def test_component_arguments_with_no_effect_are_notes(cli, tmp_path):
    path = over_r50_3x(
        tmp_path / "c.yaml",
        "model: {data_preprocessor: {non_blocking: true}}\nval_evaluator: {collect_device: gpu}\n",
    )
    out = " ".join(cli("check", str(path)).out.split())
    assert "model.data_preprocessor.non_blocking" in out
    assert "val_evaluator.collect_device" in out and "accepted, no effect in detcli" in out


def test_the_spellings_doc_names_every_key_with_no_effect():
    """docs/mmdet-spellings.md cannot drift from the declarations `check` reads."""
    import importlib

    from detcli.config.settings import NO_EFFECT
    from detcli.config.settings.reader import Section
    from detcli.plugins import load_plugins
    from detcli.registry import REGISTRIES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "mmdet-spellings.md").read_text()
    keys = set(NO_EFFECT)
    for name in ("loop", "loaders", "optim", "hooks", "evaluation", "environment"):
        module = importlib.import_module(f"detcli.config.settings.{name}")
        for section in vars(module).values():
            if isinstance(section, Section):
                keys |= {k for k, spec in section.keys.items() if spec.no_effect}
    load_plugins()
    for registry in REGISTRIES:
        for entry in registry:
            keys |= set(getattr(entry.obj, "NO_EFFECT_ARGS", {}))
    import re

    missing = [k for k in keys if not re.search(rf"[`.,\s]{re.escape(k)}[`,\s]", doc)]
    assert sorted(missing) == []


def test_check_looks_inside_test_time_aug(cli, tmp_path):
    path = over_r50_3x(
        tmp_path / "tta.yaml",
        "test_pipeline:\n"
        "  - {type: LoadImageFromFile}\n"
        "  - type: TestTimeAug\n"
        "    transforms:\n"
        "      - [{type: Resize, scale: [1333, 800], keep_ratio: true}]\n"
        "      - [{type: RandomFlip, prob: 1.0}, {type: RandomFlp, prob: 0.0}]\n"
        "      - [{type: PackDetInputs}]\n",
    )
    out = " ".join(cli("check", str(path)).out.split())
    assert "val_dataloader.dataset.pipeline.1.transforms.1.1.type" in out and "RandomFlip" in out


def test_check_compares_classes_with_the_annotation_files_categories(cli, tmp_path):
    from detcli.data.synthetic import write_shapes_coco

    write_shapes_coco(tmp_path, num_images=2, image_size=64, split="train", seed=0)
    path = over_r50_3x(
        tmp_path / "c.yaml",
        f"data_root: {tmp_path}/\n"
        "train_dataloader:\n"
        "  dataset: {ann_file: train.json, data_prefix: {img: train/},\n"
        "            metainfo: {classes: [square, cirle]}}\n",
    )
    out = " ".join(cli("check", str(path)).out.split())
    assert "train_dataloader.dataset.metainfo.classes.1" in out and "'circle'" in out

"""The runner through `detcli.engine.train()` (in process, the tiny detector on real data):
hook order and priorities, iteration-based runs, the class-number check, inference."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import torch

from detcli.config import load_config
from detcli.engine import inference, train
from detcli.engine.hooks import Hook
from detcli.errors import ConfigError
from detcli.registry import HOOKS, registering_as


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


class RecordingHook(Hook):
    """A hook from "a plugin": records the events it sees with the runner's counters."""

    events: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, tag: str = "r"):
        self.tag = tag

    def _note(self, event: str, runner, extra: Any = None) -> None:
        RecordingHook.events.append((f"{self.tag}:{event}", (runner.epoch, runner.iter, extra)))

    def before_run(self, runner):
        self._note("before_run", runner)

    def before_train_epoch(self, runner):
        self._note("before_train_epoch", runner)

    def after_train_iter(self, runner):
        self._note("after_train_iter", runner, round(runner.log_vars["lr"], 8))

    def after_train_epoch(self, runner):
        self._note("after_train_epoch", runner)

    def after_val(self, runner, metrics):
        self._note("after_val", runner, "bbox_mAP" in metrics)

    def before_save_checkpoint(self, runner, checkpoint):
        self._note("before_save_checkpoint", runner, checkpoint["meta"]["iter"])

    def after_run(self, runner):
        self._note("after_run", runner)


@pytest.fixture
def recording_hook():
    with registering_as("tests"):
        HOOKS.register(RecordingHook)
    RecordingHook.events.clear()
    yield RecordingHook.events
    HOOKS.remove_source("tests")


def test_iteration_based_run_with_custom_hooks_in_priority_order(
    tiny_config, tmp_path, recording_hook
):
    config = tiny_config(
        """
        runner: {_delete_: true, type: IterBasedRunner, max_iters: 3}
        lr_config: {_delete_: true, policy: step, step: [2], by_epoch: false, gamma: 0.5}
        checkpoint_config: {interval: 2, max_keep_ckpts: -1}
        evaluation: {interval: 2, save_best: auto}
        custom_hooks:
          - {type: RecordingHook, tag: late, priority: LOWEST}
          - {type: RecordingHook, tag: early, priority: 5}
          - {type: NumClassCheckHook}
        """
    )
    result = train(config, work_dir=tmp_path / "w", device="cpu")
    assert result.iter == 3 and result.stop_reason is None
    assert sorted(p.name for p in (tmp_path / "w").glob("iter_*.pth")) == [
        "iter_2.pth",
        "iter_3.pth",
    ]
    assert (tmp_path / "w" / "eval_iter_2.json").is_file() and (
        tmp_path / "w" / "eval_iter_3.json"
    ).is_file()
    assert result.best_checkpoint == tmp_path / "w" / "best.pth" and "bbox_mAP" in result.metrics

    names = [name for name, _ in recording_hook]
    # priority 5 runs before the checkpoint hook (50) and priority LOWEST after it
    first_save = names.index("early:before_save_checkpoint")
    assert names[first_save + 1] == "late:before_save_checkpoint"
    assert names.index("early:after_train_iter") < names.index("late:after_train_iter")
    iters = [v for n, v in recording_hook if n == "early:after_train_iter"]
    assert [(it, lr) for _, it, lr in iters] == [(1, 0.01), (2, 0.01), (3, 0.005)]  # by iteration
    assert [v[1] for n, v in recording_hook if n == "early:after_val"] == [2, 3]
    saved = [v[2] for n, v in recording_hook if n == "early:before_save_checkpoint"]
    assert 2 in saved and 3 in saved  # checkpoint meta counts finished iterations
    assert names[-1] == "late:after_run"
    log = (tmp_path / "w" / "train.log").read_text()
    assert "Iter [1/3]" in log and "Iter [3/3]" in log


def test_wrong_num_classes_stops_before_training(tiny_config, tmp_path, cli):
    config = tiny_config("model: {roi_head: {bbox_head: {num_classes: 4}}}\n")
    result = cli("train", str(config), "--work-dir", str(tmp_path / "w"), "--device", "cpu")
    assert result.code == 2 and "Traceback" not in result.err
    message = " ".join(result.err.split())
    assert "predicts 4 classes" in message and "data.train has 3" in message
    assert not list((tmp_path / "w").glob("*.pth"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("runner: {type: EpochRunner, max_epochs: 1}\n", "runner.type"),
        ("runner: {max_epoch: 1}\n", "runner has no key"),
        ("custom_hooks: [{type: EMAHok}]\n", "Did you mean 'EMAHook'"),
        ("checkpoint_config: {interval: 1, max_keep: 2}\n", "checkpoint_config"),
        ("workflow: [[train, 1], [val, 1]]\n", "workflow"),
    ],
)
def test_config_mistakes_are_named(tiny_config, tmp_path, extra, message):
    with pytest.raises(ConfigError) as err:
        train(tiny_config(extra), work_dir=tmp_path / "w", device="cpu")
    assert message in str(err.value)


def test_inference_reproduces_the_evaluation_of_a_saved_checkpoint(reference_run):
    """Offline: load the run's final weights, predict the val set in two batchings, score it:
    the numbers equal what the EvalHook logged during training."""
    from detcli.data import build_dataloader
    from detcli.evaluation import evaluate_detections
    from detcli.model_config import build_model
    from detcli.plugins import load_plugins

    load_plugins()
    cfg = load_config(reference_run.config)
    model = build_model(cfg.model)
    model.load_state_dict(
        torch.load(reference_run.work_dir / "epoch_2.pth", weights_only=True)["state_dict"]
    )
    one = inference(
        model, build_dataloader(split_loader(cfg.data, "val"), batch_size=1, num_workers=0)
    )
    two = inference(
        model, build_dataloader(split_loader(cfg.data, "val"), batch_size=2, num_workers=0)
    )
    assert len(one) == len(two) == 4
    for a, b in zip(one, two, strict=True):
        assert torch.allclose(a.boxes, b.boxes, atol=1e-3) and torch.equal(a.labels, b.labels)
    metrics = evaluate_detections(build_dataloader(split_loader(cfg.data, "val")).dataset, one)
    logged = json.loads((reference_run.work_dir / "eval_epoch_2.json").read_text())
    assert metrics["bbox_mAP"] == pytest.approx(logged["bbox_mAP"], abs=1e-6)
    assert metrics["bbox_AR@100"] == pytest.approx(logged["bbox_AR@100"], abs=1e-6)


def test_save_best_and_early_stopping_metric_names_and_rules():
    from detcli.engine.hooks.best import infer_rule, resolve_key

    metrics = {"bbox_mAP": 0.1, "bbox_mAP_50": 0.2, "bbox_AP/circle": 0.3}
    assert resolve_key("auto", metrics, "evaluation.save_best") == "bbox_mAP"
    with pytest.raises(ConfigError, match="Did you mean 'bbox_mAP'"):
        resolve_key("bbox_mAPP", metrics, "evaluation.save_best")
    assert infer_rule("bbox_mAP_50", None, "x") == "greater"
    assert infer_rule("val_loss", None, "x") == "less"
    assert infer_rule("anything", "less", "x") == "less"
    with pytest.raises(ConfigError, match="rule: greater or less"):
        infer_rule("f1", None, "EarlyStoppingHook.rule")

"""MMDetection 3.x runtime keys change what a real training run does."""

from __future__ import annotations

from detcli.engine.training import train

RUNTIME_3X = """
runner: null
checkpoint_config: null
log_config: null
evaluation: null
train_cfg: {type: EpochBasedTrainLoop, max_epochs: 2, val_interval: 2}
val_cfg: {type: ValLoop}
val_evaluator: {type: CocoMetric, metric: bbox}
default_hooks:
  logger: {type: LoggerHook, interval: 1}
  checkpoint: {type: CheckpointHook, interval: 1, max_keep_ckpts: 1, save_best: coco/bbox_mAP}
log_processor: {type: LogProcessor, window_size: 1, by_epoch: false}
env_cfg: {cudnn_benchmark: false, dist_cfg: {backend: gloo}}
log_level: WARNING
"""


def test_3x_runtime_keys_take_effect(tiny_config, tmp_path, capsys):
    config = tiny_config(RUNTIME_3X)
    work = tmp_path / "w"
    result = train(config, work_dir=work, device="cpu")
    out = capsys.readouterr().out
    log = (work / "train.log").read_text()
    assert "Iter [1/4]" in log and "Epoch [" not in log  # log_processor.by_epoch: false
    assert "Iter [" not in out  # log_level WARNING quiets the console, not train.log
    assert sorted(p.name for p in work.glob("epoch_*.pth")) == ["epoch_2.pth"]  # max_keep_ckpts
    assert (work / "best.pth").exists() and "bbox_mAP" in result.metrics  # save_best coco/...
    assert log.count("Evaluation (epoch") == 1  # val_interval 2: only after epoch 2
    assert not (work / "tf_logs").exists()  # no TensorboardVisBackend in vis_backends

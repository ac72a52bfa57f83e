"""`detcli.evaluate` with a real trained checkpoint: scores, results files, format-only, TTA,
precision options, and every bad checkpoint / config a user can hand it."""

from __future__ import annotations

import json

import pytest
import torch

import detcli
from detcli.config import load_config
from detcli.errors import CheckpointError, ConfigError, DataError, ModelError
from detcli.evaluation import evaluate_detections
from detcli.evaluation.results_files import load_results_json, partial_path
from detcli.inference import evaluate_results


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


@pytest.fixture(scope="module")
def base(trained, tmp_path_factory):
    """One plain evaluation with a results file, reused by several tests."""
    out = tmp_path_factory.mktemp("eval") / "r.bbox.json"
    result = detcli.evaluate(trained.config, trained.checkpoint, out=out, batch_size=4)
    return result


def test_evaluate_scores_the_checkpoint_and_writes_the_results_file(trained, base):
    from detcli.data import build_dataset

    assert base.num_images == 8 and len(base.detections) == 8
    assert sum(len(d) for d in base.detections) > 0
    assert set(base.metrics) >= {"bbox_mAP", "bbox_mAP_50", "bbox_AR@100", "bbox_AP/circle"}
    assert [r.name for r in base.classes] == list(trained.classes)
    assert not partial_path(base.results_file).exists()  # final file replaced the stream
    dataset = build_dataset(load_config(trained.config).data.val, test_mode=True)
    loaded = load_results_json(base.results_file, dataset)
    assert evaluate_detections(dataset, loaded) == pytest.approx(
        base.metrics, abs=1e-9, nan_ok=True
    )


def test_results_match_the_training_engines_inference(trained, base):
    """The checkpoint as `detcli eval` loads it predicts what the engine's loop predicts."""
    from detcli.data import build_dataloader
    from detcli.engine import inference, load_checkpoint
    from detcli.models import build_model

    cfg = load_config(trained.config)
    model = build_model(cfg.model)
    model.load_state_dict(load_checkpoint(trained.checkpoint)["state_dict"])
    dets = inference(model, build_dataloader(split_loader(cfg.data, "val"), batch_size=4))
    for ours, ref in zip(base.detections, dets, strict=True):
        assert torch.allclose(ours.boxes, ref.boxes, atol=1e-3)  # pixels
        assert torch.equal(ours.labels, ref.labels)


def test_format_only_on_a_test_set_without_annotations_writes_csv(trained, tmp_path):
    out = tmp_path / "sub.csv"
    result = detcli.evaluate(
        trained.config, trained.checkpoint, split="test", out=out, fmt="csv", format_only=True
    )
    assert result.metrics == {} and result.results_file == out
    lines = out.read_text().splitlines()
    assert lines[0] == "PredictionString,image_id" and len(lines) == 9
    with pytest.raises(DataError, match=r"no annotations.*--format-only"):
        detcli.evaluate(trained.config, trained.checkpoint, split="test")


@pytest.mark.parametrize("merge", ["nms", "wbf", "mean"])
def test_tta_runs_flipped_views_and_merges(trained, base, merge):
    result = detcli.evaluate(trained.config, trained.checkpoint, tta=True, tta_merge=merge)
    assert result.tta == merge and len(result.detections) == 8
    assert sum(len(d) for d in result.detections) > 0
    assert 0 <= result.metrics["bbox_mAP"] <= 1
    # merged views are not the single view's answer
    changed = any(
        len(a) != len(b) or not torch.allclose(a.boxes, b.boxes)
        for a, b in zip(result.detections, base.detections, strict=True)
    )
    assert changed


def test_bf16_and_channels_last_on_cpu_stay_close_and_fp16_is_refused(trained, base):
    result = detcli.evaluate(
        trained.config, trained.checkpoint, bf16=True, channels_last=True, batch_size=4
    )
    assert result.precision == "bf16 + channels-last"
    assert result.metrics["bbox_mAP_50"] == pytest.approx(base.metrics["bbox_mAP_50"], abs=0.1)
    with pytest.raises(ConfigError, match="--fp16 runs on CUDA GPUs only"):
        detcli.evaluate(trained.config, trained.checkpoint, fp16=True, device="cpu")


def test_missing_and_corrupt_checkpoints(trained, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        detcli.evaluate(trained.config, tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(trained.checkpoint.read_bytes()[:5000])  # a truncated download
    with pytest.raises(CheckpointError, match=r"Cannot read checkpoint .*corrupt\.pth"):
        detcli.evaluate(trained.config, corrupt)


def test_checkpoint_of_a_different_model_names_the_keys(trained, tmp_path):
    cfg = load_config(
        trained.config,
        ["model.neck.out_channels=32", "model.rpn_head.in_channels=32",
         "model.rpn_head.feat_channels=32", "model.roi_head.bbox_roi_extractor.out_channels=32",
         "model.roi_head.bbox_head.in_channels=32"],
    )  # fmt: skip
    with pytest.raises(CheckpointError, match=r"different model.*mismatched.*neck\.") as info:
        detcli.evaluate(cfg, trained.checkpoint)
    assert "checkpoint [64," in str(info.value) and "model [32," in str(info.value)


def test_class_counts_that_disagree(trained, tmp_path):
    two = load_config(
        trained.config,
        ["classes=[square, circle]", "model.roi_head.bbox_head.num_classes=2"],
    )
    with pytest.raises(CheckpointError, match=r"trained for 3 classes \['square'.*predicts 2"):
        detcli.evaluate(two, trained.checkpoint)
    # a weights-only file (no meta): the classifier's rows tell the class count
    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": torch.load(trained.checkpoint)["state_dict"]}, bare)
    with pytest.raises(CheckpointError, match=r"trained for 3 classes.*fc_cls\.weight has 4 rows"):
        detcli.evaluate(two, bare)
    # the config against itself: a head of 2 classes on a 3-class dataset
    inconsistent = load_config(trained.config, ["model.roi_head.bbox_head.num_classes=2"])
    with pytest.raises(ModelError, match=r"predicts 2 classes.*dataset has 3"):
        detcli.evaluate(inconsistent, trained.checkpoint)


def test_evaluate_results_refuses_a_results_file_of_another_dataset(trained, base, tmp_path):
    rows = json.loads(base.results_file.read_text())
    (tmp_path / "other.json").write_text(json.dumps([dict(r, image_id=999) for r in rows]))
    with pytest.raises(DataError, match="is for a different dataset"):
        evaluate_results(trained.config, tmp_path / "other.json")
    rescored = evaluate_results(trained.config, base.results_file)
    assert rescored.metrics == pytest.approx(base.metrics, abs=1e-9, nan_ok=True)

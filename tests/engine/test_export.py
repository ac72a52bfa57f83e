"""`detcli export`: a weights-only file for deployment that eval and predict load."""

from __future__ import annotations

import pytest
import torch

import detcli
from evaluation.eval_helpers import trained_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_checkpoint(tmp_path_factory)


def test_export_keeps_weights_classes_and_config_and_is_smaller(cli, trained, tmp_path):
    out = tmp_path / "model.pth"
    result = cli("export", str(trained.checkpoint), str(out))
    assert result.code == 0, result.err
    assert "MiB" in result.out
    exported = torch.load(out, weights_only=True)
    assert set(exported) == {"state_dict", "meta"}  # no optimizer, schedule or RNG state
    meta = exported["meta"]
    assert meta["CLASSES"] == list(trained.classes) and meta["config"]["model"]["type"]
    assert meta["detcli_version"] == detcli.__version__
    training = torch.load(trained.checkpoint, weights_only=True)
    assert exported["state_dict"].keys() == training["state_dict"].keys()
    # SGD momentum alone is one more tensor per weight: the export is much smaller
    assert out.stat().st_size < 0.7 * trained.checkpoint.stat().st_size


def test_exported_weights_evaluate_like_the_training_checkpoint(cli, trained, tmp_path):
    out = tmp_path / "model.pth"
    assert cli("export", str(trained.checkpoint), str(out)).code == 0
    before = detcli.evaluate(trained.config, trained.checkpoint, device="cpu")
    after = detcli.evaluate(trained.config, out, device="cpu")
    assert after.metrics["bbox_mAP"] == before.metrics["bbox_mAP"]


def test_half_export_is_half_the_size_and_predicts(cli, trained, tmp_path):
    full, half = tmp_path / "model.pth", tmp_path / "model_fp16.pth"
    assert cli("export", str(trained.checkpoint), str(full)).code == 0
    assert cli("export", str(trained.checkpoint), str(half), "--half").code == 0
    assert half.stat().st_size < 0.6 * full.stat().st_size
    weights = torch.load(half, weights_only=True)["state_dict"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    images = trained.data_root / "val"
    ref = detcli.predict(trained.config, full, [images], score_thr=0.05, device="cpu")
    got = detcli.predict(trained.config, half, [images], score_thr=0.05, device="cpu")
    assert [p.file for p in got.predictions] == [p.file for p in ref.predictions]
    assert sum(len(p.detections) for p in got.predictions) > 0


def test_export_refuses_to_overwrite_its_input_and_names_a_missing_file(cli, trained, tmp_path):
    same = cli("export", str(trained.checkpoint), str(trained.checkpoint))
    assert same.code == 2 and "overwrite its own input" in same.err
    missing = cli("export", str(tmp_path / "nope.pth"), str(tmp_path / "out.pth"))
    assert missing.code == 2 and "nope.pth" in missing.err
    assert not (tmp_path / "out.pth").exists()

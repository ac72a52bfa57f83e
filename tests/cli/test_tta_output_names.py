"""`eval --tta` names its outputs for what produced them: the plain run's files stay."""

from __future__ import annotations

import json
import shutil

import pytest

from evaluation.eval_helpers import trained_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_checkpoint(tmp_path_factory)


def test_plain_and_tta_results_and_metrics_coexist(cli, trained, tmp_path):
    ckpt = shutil.copy(trained.checkpoint, tmp_path / "model.pth")
    plain = cli("eval", str(trained.config), str(ckpt))
    assert plain.code == 0, plain.err
    plain_metrics = (tmp_path / "metrics_val.json").read_text()
    plain_results = (tmp_path / "results_val.bbox.json").read_text()

    tta = cli("eval", str(trained.config), str(ckpt), "--tta", "--tta-merge", "nms")
    assert tta.code == 0, tta.err
    assert "metrics_val.tta-nms.json" in tta.out
    tta_metrics = json.loads((tmp_path / "metrics_val.tta-nms.json").read_text())
    assert "bbox_mAP" in tta_metrics["metrics"]
    assert json.loads((tmp_path / "results_val.tta-nms.bbox.json").read_text())
    # the plain run's files are untouched
    assert (tmp_path / "metrics_val.json").read_text() == plain_metrics
    assert (tmp_path / "results_val.bbox.json").read_text() == plain_results

    # scoring the TTA results file again writes the TTA metrics name, not the plain one
    again = cli("eval", str(trained.config), str(tmp_path / "results_val.tta-nms.bbox.json"))
    assert again.code == 0, again.err
    assert (tmp_path / "metrics_val.json").read_text() == plain_metrics
    rescored = json.loads((tmp_path / "metrics_val.tta-nms.json").read_text())
    assert rescored["metrics"] == tta_metrics["metrics"]

"""Values that used to crash a run mid-way are refused up front, naming the key and its origin."""

from __future__ import annotations

import pytest

from conftest import REPO

SHAPES = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.samples_per_gpu=0", "data.samples_per_gpu must be a positive integer"),
        ("data.samples_per_gpu=-2", "data.samples_per_gpu must be a positive integer"),
        ("data.workers_per_gpu=-1", "data.workers_per_gpu must be a non-negative integer"),
        ("data.train.pipeline.2.img_scale=[0,0]", "Resize.img_scale must hold positive sizes"),
        ("log_config.interval=0", "log_config.interval must be a positive integer"),
        ("runner.max_epochs=0", "runner.max_epochs must be a positive integer"),
    ],
)
def test_check_and_train_refuse_non_positive_values(cli, shapes_coco, tmp_path, override, message):
    sets = ["--set", f"data_root={shapes_coco.root}", "--set", override]
    checked = cli("check", str(SHAPES), *sets)
    out = " ".join(checked.out.split())
    assert checked.code == 2 and message in out and f"--set {override}" in out
    trained = cli("train", str(SHAPES), *sets, "--work-dir", str(tmp_path / "w"))
    assert trained.code == 2 and "Traceback" not in trained.err


def test_output_paths_that_cannot_be_written_are_one_message_before_any_work(
    cli, shapes_coco, tmp_path
):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    config = ["--set", f"data_root={shapes_coco.root}"]
    checkpoint = str(tmp_path / "missing.pth")  # never reached: the output path fails first
    cases = [
        (["eval", str(SHAPES), checkpoint, *config, "--out", str(tmp_path)], "is a folder"),
        (["eval", str(SHAPES), checkpoint, *config, "--plot", str(a_file)], "is a file"),
        (["eval", str(SHAPES), checkpoint, *config, "--out", f"{a_file}/r.json"], "cannot create"),
        (
            ["predict", str(SHAPES), checkpoint, str(tmp_path), *config, "--out", str(a_file)],
            "is a file",
        ),
        (["dataset", "synth", str(a_file)], "is a file"),
        (["dataset", "show", str(SHAPES), *config, "--out", str(a_file)], "is a file"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2 and message in result.err, (args, result.err)
        assert "Traceback" not in result.err

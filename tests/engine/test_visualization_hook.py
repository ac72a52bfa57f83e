"""DetVisualizationHook: val predictions drawn after each evaluation (MMDetection 3.x's hook)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.io import read_image
from torchvision.transforms.v2.functional import resize

from detcli.engine import train
from detcli.errors import ConfigError

RUN = """
runner: {{_delete_: true, type: EpochBasedRunner, max_epochs: 2}}
checkpoint_config: null
evaluation: {{interval: 1, metric: bbox}}
custom_hooks:
  - {{type: DetVisualizationHook, draw: {draw}, interval: 3, score_thr: 0.05, show: {show}}}
"""

COLOURS = {(13, 251, 7), (251, 7, 13), (7, 13, 251)}
PALETTE = """
data: {val: {metainfo: {palette: [[13, 251, 7], [251, 7, 13], [7, 13, 251]]}}}
"""


def _val_images(root: Path) -> dict[str, Path]:
    images = json.loads((root / "val.json").read_text())["images"]
    return {Path(i["file_name"]).stem: root / "val" / i["file_name"] for i in images}


def test_draws_every_interval_th_val_image_after_each_evaluation(
    tiny_config, tiny_shapes, tmp_path
):
    """4 val images, interval 3: images 0 and 3, drawn after epochs 1 and 2, into vis_data/
    and the TensorBoard events file the TensorboardLoggerHook writes (no second file)."""
    work = tmp_path / "work"
    config = tiny_config(RUN.format(draw="true", show="true") + PALETTE)
    train(config, work_dir=work, device="cpu")
    val = _val_images(tiny_shapes)
    expected = sorted(list(val)[i] for i in (0, 3))
    for epoch in (1, 2):
        drawn = sorted(p.stem for p in (work / "vis_data" / f"epoch_{epoch}").glob("*.png"))
        assert drawn == expected
    in_palette = 0
    for stem in expected:
        raw = read_image(str(val[stem]))
        out = read_image(str(work / "vis_data" / "epoch_2" / f"{stem}.png"))
        # drawn on the original image (not the resized input), upscaled for reading
        assert out.shape[-2:] == (512, 512) and raw.shape[-2:] == (128, 128)
        raw = resize(raw, [512, 512], antialias=True)
        changed = (out != raw).any(0)
        colours = {tuple(c) for c in out.permute(1, 2, 0)[changed].tolist()}
        in_palette += len(colours & COLOURS)
    assert in_palette > 0  # boxes were drawn (untrained scores pass 0.05), in the palette

    events = list((work / "tf_logs").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]), size_guidance={"images": 0})
    acc.Reload()
    assert sorted(acc.Tags()["images"]) == [f"val/{stem}" for stem in expected]
    assert len(acc.Images(f"val/{expected[0]}")) == 2  # one per evaluation
    log = (work / "train.log").read_text()
    assert log.count("show: true asks for a window") == 1


def test_draw_false_draws_nothing(tiny_config, tmp_path):
    """mmdet's default: the hook in the config but `draw: false` writes no image anywhere."""
    work = tmp_path / "work"
    config = tiny_config(
        RUN.format(draw="false", show="true").replace("max_epochs: 2", "max_epochs: 1")
    )
    train(config, work_dir=work, device="cpu")
    assert (work / "eval_epoch_1.json").exists()  # it did evaluate
    assert not (work / "vis_data").exists()
    acc = EventAccumulator(str(work / "tf_logs"), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Tags()["images"] == []
    assert "asks for a window" not in (work / "train.log").read_text()


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_interval_is_a_config_error(tiny_config, tmp_path, bad):
    config = tiny_config(f"custom_hooks: [{{type: DetVisualizationHook, interval: {bad}}}]")
    with pytest.raises(ConfigError, match="interval"):
        train(config, work_dir=tmp_path / "w", device="cpu")

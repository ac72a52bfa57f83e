"""A tiny trained checkpoint for the eval/predict tests (trained once per test session).

Real data (synthetic shapes PNGs + COCO json, plus a test split without annotations), a
real `detcli.train` run of the shapes config, a real checkpoint on disk. The tests in
tests/evaluation and tests/cli share it through a folder in pytest's session temp dir.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHAPES_CONFIG = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"


@dataclass(frozen=True)
class Trained:
    """A trained tiny detector: its config file, checkpoint and data."""

    config: Path  # the shapes config on this data (test split included)
    checkpoint: Path
    data_root: Path
    classes: tuple[str, ...]


def config_text(data_root: Path, extra: str = "") -> str:
    """The shapes config on `data_root`, with a `data.test` split (test.json, no annotations)."""
    return (
        f"_base_: {SHAPES_CONFIG}\ndata_root: {data_root}\n"
        + textwrap.dedent(
            """
        data:
          test:
            type: CocoDataset
            classes: ${classes}
            ann_file: ${data_root}/test.json
            img_prefix: ${data_root}/val
            pipeline: ${data.val.pipeline}
        """
        )
        + textwrap.dedent(extra)
    )


def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Train once per session (1 epoch, 8 images, CPU, one thread); later calls reuse it."""
    import torch

    root = tmp_path_factory.getbasetemp() / "eval_trained"
    checkpoint = root / "work" / "epoch_1.pth"
    config = root / "cfg.yaml"
    if not checkpoint.is_file():
        import detcli
        from detcli.config import load_config
        from detcli.data.synthetic import write_shapes_coco

        root.mkdir(parents=True, exist_ok=True)
        write_shapes_coco(root, num_images=8, image_size=128, split="train", seed=5)
        val_ann, _ = write_shapes_coco(root, num_images=8, image_size=128, split="val", seed=5)
        test = json.loads(val_ann.read_text())
        test["annotations"] = []  # a competition test set: images and categories only
        (root / "test.json").write_text(json.dumps(test))
        config.write_text(config_text(root), encoding="utf-8")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            cfg = load_config(
                config,
                [
                    "runner.max_epochs=1",
                    "evaluation=null",
                    "log_config.hooks=[{type: TextLoggerHook}]",
                ],
            )
            detcli.train(cfg, work_dir=root / "work", device="cpu")
        finally:
            torch.set_num_threads(threads)
    return Trained(config, checkpoint, root, ("square", "circle", "triangle"))

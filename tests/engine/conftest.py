"""Engine test helpers: a tiny synthetic shapes set and a complete training config for it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .engine_helpers import TINY_TRAIN, Proc, run_process


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train + 4 val real PNGs with COCO json (3 shapes, 128 px): a few seconds per epoch."""
    from detcli.data.synthetic import write_shapes_coco

    root = tmp_path_factory.mktemp("tiny_shapes")
    write_shapes_coco(root, num_images=4, image_size=128, split="train", seed=1)
    write_shapes_coco(root, num_images=4, image_size=128, split="val", seed=1)
    return root


@pytest.fixture
def tiny_config(tiny_shapes: Path, tmp_path: Path) -> Callable[..., Path]:
    """`tiny_config(extra_yaml)`: a config file on the shapes config + the tiny set + extra keys."""

    def _write(extra: str = "", name: str = "cfg.yaml") -> Path:
        path = tmp_path / name
        text = f"_base_: {TINY_TRAIN}\ndata_root: {tiny_shapes}\n" + textwrap.dedent(extra)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@dataclass
class Run:
    config: Path
    work_dir: Path
    proc: Proc


@pytest.fixture(scope="session")
def reference_run(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """`detcli train` of the shapes config as a real process, deterministic, uninterrupted:
    2 epochs x 2 iterations, evaluation after each epoch. Several tests compare with it."""
    root = tmp_path_factory.mktemp("reference")
    config = root / "cfg.yaml"
    config.write_text(f"_base_: {TINY_TRAIN}\ndata_root: {tiny_shapes}\n", encoding="utf-8")
    work_dir = root / "work"
    proc = run_process(
        "train", str(config), "--work-dir", str(work_dir), "--device", "cpu", "--deterministic"
    )
    assert proc.code == 0, proc.err
    return Run(config, work_dir, proc)

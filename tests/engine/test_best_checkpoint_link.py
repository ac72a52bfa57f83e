"""`best.pth` links to the numbered checkpoint of the best evaluation instead of copying it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from detcli.engine import train

THREE_EPOCHS = """
runner: {type: EpochBasedRunner, max_epochs: 3}
checkpoint_config: {interval: %d, max_keep_ckpts: 1}
evaluation: {interval: 1, metric: bbox, save_best: bbox_mAP, rule: %s}
"""


def _meta(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")["meta"]


def _best_iter(work: Path) -> int:
    return _meta(work / "latest.pth")["hooks"]["EvalHook"]["best_iter"]


@pytest.fixture
def scripted_map(monkeypatch):
    """Evaluations return the given bbox_mAP values, one per epoch (COCO scoring skipped)."""
    from detcli.evaluation.coco_metric import CocoMetric

    def script(*values: float) -> None:
        it = iter(values)
        monkeypatch.setattr(CocoMetric, "__call__", lambda self, ds, dets: {"bbox_mAP": next(it)})

    return script


@pytest.mark.parametrize(
    ("maps", "kept"),
    [
        ((0.5, 0.2, 0.1), {"epoch_1.pth", "epoch_3.pth"}),  # best stays at epoch 1
        ((0.5, 0.2, 0.9), {"epoch_3.pth"}),  # best moves on: epoch 1's file goes
    ],
)
def test_best_is_a_relative_link_kept_through_max_keep_ckpts(
    tiny_config, tmp_path, scripted_map, maps, kept
):
    """max_keep_ckpts 1 keeps the newest epoch and the best one's file; best.pth links to it,
    never dangling, and the file is deleted once the best moves on."""
    scripted_map(*maps)
    work = tmp_path / "w"
    result = train(tiny_config(THREE_EPOCHS % (1, "greater")), work_dir=work, device="cpu")
    best = work / "best.pth"
    assert best.is_symlink() and not Path(os.readlink(best)).is_absolute()
    target = best.resolve()
    assert target.exists() and target.parent == work.resolve()  # never dangles
    best_epoch = 1 + maps.index(max(maps))
    assert target.name == f"epoch_{best_epoch}.pth"
    assert _meta(target)["iter"] == _best_iter(work) == 2 * best_epoch  # 2 iterations per epoch
    # no second full copy: only the newest epoch and the best one's file remain
    assert {p.name for p in work.glob("*.pth") if not p.is_symlink()} == kept
    assert result.best_checkpoint == best


def test_best_is_a_file_only_when_no_checkpoint_holds_its_iteration(tiny_config, tmp_path):
    """Checkpoints every 2 epochs, evaluation every epoch: an epoch-1 or epoch-3 best has no
    numbered file of its own (best.pth is one); an epoch-2 best links to epoch_2.pth."""
    work = tmp_path / "w"
    train(tiny_config(THREE_EPOCHS % (2, "greater")), work_dir=work, device="cpu")
    best = work / "best.pth"
    best_iter = _best_iter(work)
    numbered = {_meta(p)["iter"]: p for p in work.glob("epoch_*.pth")}
    if best_iter in numbered:
        assert best.is_symlink() and best.resolve() == numbered[best_iter].resolve()
    else:
        assert not best.is_symlink() and _meta(best)["iter"] == best_iter


def test_best_falls_back_to_a_copy_without_symlinks(tiny_config, tmp_path, monkeypatch):
    """On a filesystem without symlinks best.pth is a plain file holding the best iteration."""

    def no_symlinks(self, *args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "symlink_to", no_symlinks)
    work = tmp_path / "w"
    train(tiny_config(THREE_EPOCHS % (1, "less")), work_dir=work, device="cpu")
    best = work / "best.pth"
    assert best.is_file() and not best.is_symlink()
    assert _meta(best)["iter"] == _best_iter(work)


def test_resumed_run_keeps_the_earlier_best(tiny_config, tmp_path, scripted_map):
    """Best at epoch 2, resumed to epoch 3 with a worse result under max_keep_ckpts 1: epoch 2's
    file stays, best.pth still points at it."""
    work = tmp_path / "w"
    scripted_map(0.2, 0.9)
    two = (THREE_EPOCHS % (1, "greater")).replace("max_epochs: 3", "max_epochs: 2")
    train(tiny_config(two, name="two.yaml"), work_dir=work, device="cpu")
    scripted_map(0.1)
    config = tiny_config(THREE_EPOCHS % (1, "greater"))
    train(config, work_dir=work, device="cpu", resume="auto", allow_config_change=True)
    best = work / "best.pth"
    assert best.is_symlink() and best.resolve() == (work / "epoch_2.pth").resolve()
    assert {p.name for p in work.glob("epoch_*.pth")} == {"epoch_2.pth", "epoch_3.pth"}

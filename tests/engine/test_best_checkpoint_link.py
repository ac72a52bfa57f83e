"""`best.pth` links to the numbered checkpoint of the best evaluation instead of copying it."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_best_is_a_relative_link_kept_through_max_keep_ckpts(tiny_config, tmp_path):
    """`rule: less` on an untrained model's mAP: the best stays early while later epochs come
    and go under max_keep_ckpts 1; best.pth still points at a kept file holding the best."""
    work = tmp_path / "w"
    result = train(tiny_config(THREE_EPOCHS % (1, "less")), work_dir=work, device="cpu")
    best = work / "best.pth"
    assert best.is_symlink() and not Path(os.readlink(best)).is_absolute()
    target = best.resolve()
    assert target.exists() and target.parent == work.resolve()  # never dangles
    assert target.name.startswith("epoch_") and _meta(target)["iter"] == _best_iter(work)
    # no second full copy: only the newest epoch and the best one's file remain
    assert sorted(p.name for p in work.glob("*.pth") if not p.is_symlink()) == sorted(
        {"epoch_3.pth", target.name}
    )
    assert result.best_checkpoint == best
    assert torch.load(best, weights_only=True)["meta"]["iter"] == _best_iter(work)


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

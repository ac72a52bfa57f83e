"""Resume continues exactly; --load-from loads weights only; a changed config is refused."""

from __future__ import annotations

import torch

from detcli.engine import train

from .engine_helpers import read_jsonl

ITER_RUN = """
runner: {_delete_: true, type: IterBasedRunner, max_iters: 3}
data: {samples_per_gpu: 1}
evaluation: null
checkpoint_config: {interval: 2, max_keep_ckpts: -1}
"""


def _losses(work_dir) -> dict[int, dict[str, float]]:
    return {
        r["iter"]: {k: v for k, v in r.items() if k.startswith("loss") or k in ("lr", "grad_norm")}
        for r in read_jsonl(work_dir / "log.jsonl")
        if r["mode"] == "train"
    }


def _assert_same_state(a, b) -> None:
    for key in ("state_dict",):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), name
    moments_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    moments_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(moments_a, moments_b, strict=True))
    assert a["meta"]["iter"] == b["meta"]["iter"] and a["scheduler"] == b["scheduler"]


def test_resume_mid_epoch_equals_an_uninterrupted_run(tiny_config, tmp_path):
    """3 iterations (4 per epoch, random flips on) vs 2 + resume + 1: weights, optimizer state,
    schedule and logged losses are bit-identical (resume at an epoch end: test_extras, EMA)."""
    config = tiny_config(ITER_RUN)
    whole = tmp_path / "whole"
    train(config, work_dir=whole, device="cpu", deterministic=True)
    assert sorted(p.name for p in whole.glob("iter_*.pth")) == ["iter_2.pth", "iter_3.pth"]
    middle = torch.load(whole / "iter_2.pth", weights_only=True)
    assert middle["meta"]["inner_iter"] == 2 and middle["rng"]["epoch_start"] is not None

    work = tmp_path / "resumed"
    result = train(
        config, work_dir=work, resume=whole / "iter_2.pth", device="cpu", deterministic=True
    )
    assert result.iter == 3
    reference = torch.load(whole / "iter_3.pth", weights_only=True)
    _assert_same_state(torch.load(work / "iter_3.pth", weights_only=True), reference)
    assert _losses(work) == {3: _losses(whole)[3]}  # bit-identical log of the replayed iteration
    log = (work / "train.log").read_text()
    assert f"resumed from {whole / 'iter_2.pth'} at epoch 0, iteration 2 (+2 into the epoch)" in log


def test_load_from_reports_shape_mismatches_and_trains(reference_run, tiny_config, tmp_path):
    """A 2-class model from the 3-class run's weights: class rows are taken by name."""
    config = tiny_config(
        """
        classes: [square, circle]
        model: {roi_head: {bbox_head: {num_classes: 2}}}
        runner: {_delete_: true, type: IterBasedRunner, max_iters: 1}
        optimizer: {lr: 0.0, weight_decay: 0.0}
        evaluation: null
        """
    )
    source = reference_run.work_dir / "epoch_2.pth"
    result = train(config, work_dir=tmp_path / "w", load_from=source, device="cpu")
    assert result.iter == 1
    log = " ".join((tmp_path / "w" / "train.log").read_text().split())
    assert f"loaded weights from {source}" in log
    # the 2-class head takes the rows of the same class names (and background) from the file
    assert "2 of 2 classes reuse the checkpoint's rows of the same name" in log
    assert "circle <- checkpoint class row 1" in log
    loaded = torch.load(tmp_path / "w" / "iter_1.pth", weights_only=True)["state_dict"]
    original = torch.load(source, weights_only=True)["state_dict"]
    stats = ("running_mean", "running_var", "num_batches_tracked")  # BN statistics still move
    backbone = [k for k in original if k.startswith("backbone.") and not k.endswith(stats)]
    assert backbone and all(
        torch.equal(loaded[k], original[k]) for k in backbone
    )  # lr 0: as loaded


def test_resume_with_a_changed_schedule_is_refused_unless_allowed(reference_run, tmp_path, cli):
    args = [
        "train", str(reference_run.config), "--work-dir", str(tmp_path / "w"), "--device", "cpu",
        "--resume", str(reference_run.work_dir / "latest.pth"),
        "--set", "lr_config.step=[2]", "--set", "model.rpn_head.feat_channels=32",
    ]  # fmt: skip
    refused = cli(*args)
    message = " ".join(refused.err.split())
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "lr_config.step: [1] -> [2]" in message
    assert (
        "model.rpn_head.feat_channels: 64 -> 32" in message and "--allow-config-change" in message
    )

    allowed = cli(*args[:-2], "--allow-config-change")  # same model, changed schedule
    assert allowed.code == 0, allowed.err
    log = (tmp_path / "w" / "train.log").read_text()
    assert "resuming with a changed config" in log and "lr_config.step" in log
    assert "resumed from" in log and "at epoch 2, iteration 4" in log


def test_resume_auto_without_checkpoints_starts_fresh_and_bad_paths_fail(
    tiny_config, tmp_path, cli
):
    missing = cli(
        "train",
        str(tiny_config()),
        "--resume",
        str(tmp_path / "nope.pth"),
        "--work-dir",
        str(tmp_path / "w"),
    )
    assert missing.code == 2 and "no such checkpoint file" in missing.err
    not_ckpt = tmp_path / "junk.pth"
    not_ckpt.write_bytes(b"not a checkpoint")
    bad = cli(
        "train", str(tiny_config()), "--load-from", str(not_ckpt), "--work-dir", str(tmp_path / "w")
    )
    assert bad.code == 2 and "Cannot read checkpoint" in bad.err and "Traceback" not in bad.err


def test_resume_auto_picks_the_latest_checkpoint(reference_run):
    from detcli.engine.checkpoint import find_latest

    assert find_latest(reference_run.work_dir) == reference_run.work_dir / "epoch_2.pth"

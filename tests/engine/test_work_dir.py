"""Nothing lost in a work dir, as real processes: a rerun never mixes with an earlier run, one
run at a time holds the work dir, retention touches only this run's checkpoints, an end-of-epoch
failure keeps the epoch, a full disk is one message with nothing half-written."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys

import torch

from .engine_helpers import REPO, TINY_TRAIN, detcli_process, run_process

ONE_EPOCH = ("--set", "runner.max_epochs=1", "--set", "evaluation=null", "--device", "cpu")


def train(config, work, *extra, timeout=300):
    return run_process("train", str(config), "--work-dir", str(work), *ONE_EPOCH, *extra,
                       timeout=timeout)  # fmt: skip


def test_rerun_in_a_used_work_dir_is_refused_and_overwrite_keeps_the_old_run(tiny_config, tmp_path):
    config, work = tiny_config(), tmp_path / "w"
    assert train(config, work).code == 0
    first = (work / "epoch_1.pth").read_bytes()
    again = train(config, work)
    assert again.code == 2 and "Traceback" not in again.err
    assert "already holds a run" in again.err and "--resume auto" in again.err
    assert "--overwrite" in again.err and (work / "epoch_1.pth").read_bytes() == first
    fresh = train(config, work, "--overwrite")
    assert fresh.code == 0, fresh.err
    [previous] = work.glob("previous-*")
    assert (previous / "epoch_1.pth").read_bytes() == first  # the earlier run, moved intact
    assert (previous / "log.jsonl").exists() and (work / "latest.pth").resolve().parent == work


def test_retention_deletes_only_this_runs_checkpoints_iter_ones_too(tiny_config, tmp_path):
    config = tiny_config(
        "runner: {_delete_: true, type: IterBasedRunner, max_iters: 3}\n"
        "checkpoint_config: {interval: 1, max_keep_ckpts: 1}\n"
        "evaluation: null\n"
    )
    work = tmp_path / "w"
    work.mkdir()
    foreign = work / "notes"
    foreign.mkdir()
    proc = run_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    assert proc.code == 0, proc.err
    assert sorted(p.name for p in work.glob("*.pth")) == ["iter_3.pth", "latest.pth"]
    # A checkpoint that is not this run's (copied in by the user) survives this run's retention.
    shutil.copy(work / "iter_3.pth", work / "iter_99.pth")
    more = tiny_config(
        "runner: {_delete_: true, type: IterBasedRunner, max_iters: 5}\n"
        "checkpoint_config: {interval: 1, max_keep_ckpts: 1}\n"
        "evaluation: null\n",
        name="more.yaml",
    )
    resumed = run_process(
        "train", str(more), "--work-dir", str(work), "--device", "cpu", "--resume", "auto",
        "--allow-config-change",
    )  # fmt: skip
    assert resumed.code == 0, resumed.err
    assert sorted(p.name for p in work.glob("iter_*.pth")) == ["iter_5.pth", "iter_99.pth"]
    assert (work / "latest.pth").resolve() == work / "iter_5.pth"


def test_one_run_per_work_dir_and_a_killed_runs_lock_and_temp_files_are_stale(
    tiny_config, tmp_path
):
    # Far more epochs than it can run before it is killed, however slow the second run starts.
    config = tiny_config("runner: {max_epochs: 100000}\nevaluation: null\n")
    work = tmp_path / "w"
    first = detcli_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    assert first.stdout is not None
    for line in first.stdout:  # wait until it trains
        if "Epoch [1/100000]" in line:
            break
    second = run_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    assert second.code == 2 and f"in use by another detcli run (pid {first.pid}" in second.err
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert (work / ".detcli.lock").exists()  # left behind by kill -9
    litter = work / ".epoch_1.pth.x1y2.tmp"  # what a write killed mid-way leaves
    litter.write_bytes(b"half a checkpoint")
    third = run_process("train", str(config), "--work-dir", str(work), *ONE_EPOCH, "--overwrite")
    assert third.code == 0, third.err
    assert not litter.exists() and not (work / ".detcli.lock").exists()


def test_an_end_of_epoch_failure_keeps_the_epochs_checkpoint(tiny_shapes, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    config = tmp_path / "c.yaml"
    config.write_text(f"_base_: {TINY_TRAIN}\ndata_root: {data}\nrunner: {{max_epochs: 1}}\n")
    for image in (data / "val").glob("*.png"):
        image.write_bytes(b"not a png")  # evaluation after epoch 1 fails on it
    work = tmp_path / "w"
    proc = run_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    assert proc.code == 2 and "Traceback" not in proc.err
    kept = torch.load(work / "epoch_1.pth", weights_only=True)
    assert kept["meta"]["epoch"] == 1 and "its training is kept in" in proc.out + proc.err


def test_check_catches_a_save_best_that_no_metric_produces(tiny_config, cli):
    config = tiny_config("evaluation: {interval: 1, metric: bbox, save_best: bbox_mAP50}\n")
    result = cli("check", str(config))
    out = " ".join(result.out.split())
    assert result.code == 2 and "save_best 'bbox_mAP50'" in out and "bbox_mAP_50" in out


def test_a_full_disk_is_one_message_and_leaves_nothing_half_written(tiny_config, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes the checkpoint write fail as a full disk would."""
    config, work = tiny_config(), tmp_path / "w"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 * 2**20, resource.RLIM_INFINITY))

    env = {"COLUMNS": "200", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "detcli", "train", str(config), "--work-dir", str(work), *ONE_EPOCH],
        capture_output=True, text=True, timeout=300, preexec_fn=limit, cwd=REPO,
        env={**__import__("os").environ, **env},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Could not write checkpoint" in proc.stderr and "epoch_1.pth" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(work.glob(".*.tmp")) and not (work / "epoch_1.pth").exists()
    assert (work / "log.jsonl").exists() and not (work / ".detcli.lock").exists()


def test_val_split_honours_on_bad_image_warn(tiny_shapes, tmp_path):
    """With `on_bad_image: warn` an unreadable val image is named and scored as missed; the
    evaluation (during training and by `detcli eval`) completes."""
    data = tmp_path / "data"
    shutil.copytree(tiny_shapes, data)
    next(iter(sorted((data / "val").glob("*.png")))).write_bytes(b"not a png")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"_base_: {TINY_TRAIN}\ndata_root: {data}\nrunner: {{max_epochs: 1}}\n"
        "data: {val: {on_bad_image: warn}}\n"
    )
    work = tmp_path / "w"
    proc = run_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    assert proc.code == 0, proc.err
    assert "cannot be decoded" in proc.err and "Skipped (on_bad_image: warn)" in proc.err
    assert "bbox_mAP" in (work / "eval_epoch_1.json").read_text()
    evaluated = run_process("eval", str(config), str(work / "epoch_1.pth"), "--device", "cpu")
    assert evaluated.code == 0, evaluated.err
    assert "on_bad_image: warn" in evaluated.err

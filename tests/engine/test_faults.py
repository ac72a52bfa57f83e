"""Faults, as real processes: Ctrl-C / SIGTERM checkpoint and exit 130 with the resume command
(and resuming it reproduces the uninterrupted run), a NaN loss stops with names and keeps the
last good checkpoint, an unwritable work dir fails before training."""

from __future__ import annotations

import shlex
import signal

import torch

from .engine_helpers import detcli_process, read_jsonl, run_process


def _interrupt_after_first_iteration(
    args: list[str], sig: int, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = detcli_process(*args, env=env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Epoch [1/2][1/2]" in line:
            proc.send_signal(sig)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines) + out, err


def test_ctrl_c_checkpoints_exits_130_and_the_printed_resume_reproduces_the_run(
    reference_run, tmp_path
):
    work = tmp_path / "w"
    args = [
        "train",
        str(reference_run.config),
        "--work-dir",
        str(work),
        "--device",
        "cpu",
        "--deterministic",
    ]
    code, out, err = _interrupt_after_first_iteration(args, signal.SIGINT)
    assert code == 130, err
    assert "SIGINT received" in out and "interrupted:" in err and "Traceback" not in err
    saved = sorted(work.glob("iter_*.pth"))
    assert len(saved) == 1 and (work / "latest.pth").resolve() == saved[0]
    assert torch.load(saved[0], weights_only=True)["meta"]["iter"] >= 1

    command = shlex.split(err.split("resume with:")[1].strip().splitlines()[0])
    assert command[:2] == ["detcli", "train"] and command[-2:] == ["--resume", "auto"]
    resumed = run_process(*command[1:])
    assert resumed.code == 0, resumed.err
    assert f"resumed from {saved[0]}" in resumed.out

    final = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    expected = torch.load(reference_run.work_dir / "epoch_2.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    ours = {(r["mode"], r["iter"]): r for r in read_jsonl(work / "log.jsonl")}
    theirs = {(r["mode"], r["iter"]): r for r in read_jsonl(reference_run.work_dir / "log.jsonl")}
    for key, record in ours.items():
        same = {k: v for k, v in record.items() if k.startswith(("loss", "bbox_")) or k == "lr"}
        assert same == {k: theirs[key][k] for k in same}, key


def test_sigterm_checkpoints_and_exits_130_and_terminals_get_a_progress_bar(tiny_config, tmp_path):
    work = tmp_path / "w"
    config = tiny_config("evaluation: null\n")
    args = ["train", str(config), "--work-dir", str(work), "--device", "cpu"]
    # FORCE_COLOR makes rich treat the pipe as a terminal: a progress bar, log lines above it
    code, out, err = _interrupt_after_first_iteration(args, signal.SIGTERM, {"FORCE_COLOR": "1"})
    assert code == 130 and "SIGTERM received" in out and "interrupted by SIGTERM" in err
    assert list(work.glob("iter_*.pth")) and "--resume auto" in err
    assert "━" in out and "/4" in out  # the bar and its done/total column (4 iterations)


def test_non_finite_loss_stops_naming_the_iteration_and_losses(tiny_config, tmp_path):
    config = tiny_config(
        """
        optimizer: {lr: 1.0e+6}
        optimizer_config: {grad_clip: null}
        runner: {_delete_: true, type: IterBasedRunner, max_iters: 8}
        checkpoint_config: {interval: 1, max_keep_ckpts: -1}
        evaluation: null
        """
    )
    work = tmp_path / "w"
    result = run_process("train", str(config), "--work-dir", str(work), "--device", "cpu")
    message = " ".join(result.err.split())
    assert result.code == 2 and "Traceback" not in result.err
    assert "The loss became non-finite at epoch " in message and "loss_cls=nan" in message
    bad_iter = int(message.split("iteration ")[1].split(":")[0])
    good = work / f"iter_{bad_iter - 1}.pth"
    assert f"The last good checkpoint is {good}" in message
    assert not (work / f"iter_{bad_iter}.pth").exists()
    weights = torch.load(good, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_unwritable_work_dir_fails_before_training(tiny_config, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = run_process(
        "train", str(tiny_config()), "--work-dir", str(blocker / "run"), "--device", "cpu"
    )
    message = " ".join(result.err.split())
    assert result.code == 2 and "Traceback" not in result.err
    assert (
        f"The work dir {blocker / 'run'} is not writable" in message
        and "training has not started" in message
    )
    assert "Epoch [" not in result.out

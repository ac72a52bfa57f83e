"""`detcli train`: train the model a config describes (also under torchrun)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from detcli.cli.options import ConfigArg, DeviceOption, SetOption, ThreadsOption
from detcli.cli.output import console, err_console, load_plugins_reporting_failures


def train(
    config: ConfigArg,
    set_: SetOption = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir", help="Where logs and checkpoints go (default: work_dirs/<config name>)."
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Continue exactly from a checkpoint: a path, or 'auto' for the work dir's latest.",
            metavar="PATH|auto",
        ),
    ] = None,
    load_from: Annotated[
        Path | None,
        typer.Option(
            "--load-from",
            help="Start from a checkpoint's weights only (shape mismatches are reported).",
        ),
    ] = None,
    amp: Annotated[
        bool | None,
        typer.Option(
            "--amp/--no-amp", help="Mixed precision (fp16 + loss scaling on CUDA, bf16 on CPU)."
        ),
    ] = None,
    device: DeviceOption = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: the config's `seed`).")
    ] = None,
    deterministic: Annotated[
        bool,
        typer.Option("--deterministic", help="Deterministic algorithms (reproducible, slower)."),
    ] = False,
    allow_config_change: Annotated[
        bool,
        typer.Option(
            "--allow-config-change", help="Resume even if the model or schedule settings changed."
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Start anew in a work dir that holds an earlier run (its files move to "
            "previous-<time>/; nothing is deleted).",
        ),
    ] = False,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            "--gpus",
            min=1,
            help="Processes (GPUs) on this machine: re-launches itself through torchrun.",
        ),
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Train a detector; the work dir gets config.yaml, logs, TensorBoard events and checkpoints."""
    from detcli.engine.threads import prefer_passive_wait

    prefer_passive_wait()  # before torch loads OpenMP (torchrun's processes inherit it)
    if nproc is not None and nproc > 1 and "LOCAL_RANK" not in os.environ:
        _exec_torchrun(nproc)
    from detcli.cli.config_input import load_run_config
    from detcli.engine.runner import TrainingInterrupted
    from detcli.engine.training import train as run_training

    cfg, settings = load_run_config(config, set_)
    load_plugins_reporting_failures()
    work_dir = Path(work_dir or settings.env.work_dir or Path("work_dirs") / config.stem)
    try:
        result = run_training(
            cfg,
            work_dir=work_dir,
            resume=resume,
            load_from=load_from,
            amp=amp,
            device=device,
            seed=seed,
            deterministic=deterministic,
            allow_config_change=allow_config_change,
            overwrite=overwrite,
            threads="auto" if threads is None else threads,
        )
    except TrainingInterrupted as exc:
        if int(os.environ.get("RANK", "0")) == 0:
            err_console.print(f"[yellow]interrupted:[/] {escape(str(exc))}", soft_wrap=True)
            flags = [f"--device={device}"] if device else []
            flags += [f"--seed={seed}"] if seed is not None else []
            flags += ["--amp"] if amp else ["--no-amp"] if amp is False else []
            flags += ["--deterministic"] if deterministic else []
            flags += [f"--threads={threads}"] if threads is not None else []
            command = _resume_command(config, set_ or [], work_dir, flags)
            err_console.print(f"resume with:\n  {escape(command)}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    if int(os.environ.get("RANK", "0")) == 0:
        summary = (
            f"[green]✓[/] trained {result.iter} iterations; work dir {escape(str(result.work_dir))}"
        )
        if result.best_checkpoint:
            summary += f"; best checkpoint {escape(str(result.best_checkpoint))}"
        console.print(summary, soft_wrap=True)


def _resume_command(config: Path, overrides: list[str], work_dir: Path, flags: list[str]) -> str:
    """The command that continues this run: same config, overrides and flags, `--resume auto`."""
    args = ["detcli", "train", str(config)]
    for override in overrides:
        args += ["--set", override]
    args += ["--work-dir", str(work_dir), *flags]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        args.append(f"--nproc={world}")
    return shlex.join([*args, "--resume", "auto"])


def _exec_torchrun(nproc: int) -> None:
    """Replace this process by `torchrun --standalone --nproc_per_node N -m detcli train ...`."""
    args = sys.argv[1:]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--nproc", "--gpus"):
            skip = True
            continue
        if not arg.startswith(("--nproc=", "--gpus=")):
            kept.append(arg)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "detcli", *kept,
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("train")(train)

"""Training speed on a busy machine: detcli's thread default vs one thread vs torch's default.

The same short training (configs/shapes/faster_rcnn_r18_fpn_shapes.yaml: R18-FPN64, 128 px,
`--iters` iterations on a `detcli dataset synth` set) runs in a fresh process per case, alone
and next to `--busy` processes that spin on one core each. Policies:
  detcli default  what `detcli train` does with no --threads (engine/threads.py, with
                  OMP_WAIT_POLICY=PASSIVE unless set);
  1 thread        `--threads 1`;
  torch default   `detcli.train(cfg)` from Python with OMP_NUM_THREADS/OMP_WAIT_POLICY unset:
                  one thread per core, OpenMP's default wait policy (torch as it comes).
Reported: median seconds per iteration after the first two (warm-up), from log.jsonl, and the
thread count each case ran with. CPU heavy: on a shared machine, other processes' load shows
in every number (say so next to them).

    python benchmarks/busy_machine.py [--iters 8] [--busy 2] [--images 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"
POLICIES = ("detcli default", "1 thread", "torch default")
# `detcli.train` from Python leaves torch's thread setting alone: torch as it comes.
TORCH_DEFAULT = """
import sys, torch, detcli
from detcli.config import load_config
print(f"threads: {torch.get_num_threads()} from torch", flush=True)
detcli.train(load_config(sys.argv[1], sys.argv[3:]), work_dir=sys.argv[2])
"""


def overrides(data_root: Path, iters: int) -> list[str]:
    """The short training: `iters` iterations, no evaluation, one checkpoint at the end."""
    return [
        f"data_root={data_root}",
        f"runner={{_delete_: true, type: IterBasedRunner, max_iters: {iters}}}",
        "lr_config.by_epoch=false",
        f"checkpoint_config={{interval: {iters}, max_keep_ckpts: 1}}",
        "evaluation=null",
        "custom_hooks=[]",
        "device=cpu",
    ]


def run_case(policy: str, data_root: Path, work: Path, iters: int) -> tuple[float, float, str]:
    """(median s/iteration after warm-up, process wall seconds, thread count) of one run."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    sets = overrides(data_root, iters)
    if policy == "torch default":
        args = [sys.executable, "-c", TORCH_DEFAULT, str(CONFIG), str(work), *sets]
    else:
        args = [sys.executable, "-m", "detcli", "train", str(CONFIG), "--work-dir", str(work)]
        args += [a for s in sets for a in ("--set", s)]
        args += ["--threads", "1"] if policy == "1 thread" else []
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{policy} failed:\n{proc.stdout}\n{proc.stderr}")
    found = re.search(r"threads: (\d+)", proc.stdout)
    lines = (work / "log.jsonl").read_text().splitlines()
    times = [r["time"] for r in map(json.loads, lines) if r.get("mode") == "train" and "time" in r]
    return statistics.median(times[2:] or times), wall, found.group(1) if found else "?"


def spinners(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--busy", type=int, default=2, help="spinning processes beside it")
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp) / "shapes"
        subprocess.run(
            [sys.executable, "-m", "detcli", "dataset", "synth", str(data_root), "-n",
             str(args.images), "--size", "128", "--split", "train"],
            check=True, capture_output=True, cwd=REPO,
        )  # fmt: skip
        for condition in ("alone", f"{args.busy} busy"):
            busy = spinners(args.busy) if condition != "alone" else []
            try:
                for i, policy in enumerate(POLICIES):
                    work = Path(tmp) / f"{condition}-{i}".replace(" ", "_")
                    per_iter, wall, threads = run_case(policy, data_root, work, args.iters)
                    rows.append((condition, policy, threads, per_iter, wall))
                    print(f"{condition:8} {policy:15} {threads:>3} threads  {per_iter:.2f} s/it")
            finally:
                for proc in busy:
                    proc.kill()
                    proc.wait()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"\n{os.cpu_count()} cores, load {load} at the end, {args.iters} iterations per run\n")
    print("| beside it | threads policy | threads | s/iteration | process wall s |")
    print("|---|---|---:|---:|---:|")
    for condition, policy, threads, per_iter, wall in rows:
        print(f"| {condition} | {policy} | {threads} | {per_iter:.2f} | {wall:.0f} |")


if __name__ == "__main__":
    main()

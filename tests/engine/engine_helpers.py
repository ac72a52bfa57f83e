"""Engine test helpers: running detcli as a real process, reading logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_TRAIN = REPO / "configs" / "shapes" / "faster_rcnn_r18_fpn_shapes.yaml"


@dataclass
class Proc:
    code: int
    out: str
    err: str


def detcli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m detcli ARGS` with stdout and stderr piped."""
    # one torch thread, as in the in-process tests (see conftest._one_torch_thread)
    base = {"COLUMNS": "200", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env = {**os.environ, **base, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "detcli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def run_process(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> Proc:
    """Run `python -m detcli ARGS` to the end."""
    proc = detcli_process(*args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return Proc(proc.returncode, out, err)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a log.jsonl file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

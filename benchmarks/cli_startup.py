"""CLI start-up time: `detcli print-config` and `detcli --help` next to `import torch`.

Both detcli commands must not import torch, so they should cost a small fraction of it.
Runs everything in one process tree, interleaved, and prints median / min wall time.

    python benchmarks/cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS: dict[str, list[str]] = {
    "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
    "detcli --help": [sys.executable, "-m", "detcli", "--help"],
    "detcli print-config configs/trash.yaml": [
        sys.executable, "-m", "detcli", "print-config", "configs/trash.yaml",
    ],
    "detcli print-config --show-origin": [
        sys.executable, "-m", "detcli", "print-config", "configs/trash.yaml", "--show-origin",
    ],
    'python -c "import torch" (reference)': [sys.executable, "-c", "import torch"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache once
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    for _ in range(args.repeat):  # interleaved, so drift in machine load hits all alike
        for name, cmd in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)

    torch_median = statistics.median(times['python -c "import torch" (reference)'])
    print(f"{'command':45s} {'median':>9s} {'min':>9s} {'vs import torch':>16s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:45s} {median * 1000:7.0f}ms {min(values) * 1000:7.0f}ms "
              f"{median / torch_median:15.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()

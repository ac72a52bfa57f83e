"""How many CPU threads torch uses per process, chosen from the cores this process may use.

torch's default (one thread per core the machine has) collapses when the cores are shared:
every parallel region waits for its slowest thread, and a thread that other processes
pushed off its core stalls the rest (10-25x slower training on a busy 2-core machine). The
default here counts the cores the process may actually run on (affinity, cgroup CPU quota),
shares them among local processes (`--nproc`/torchrun) and their data-loader workers, and
leaves out the cores other processes keep busy (the 1-minute load average). `--threads N`
or the config's `threads: N` overrides it. torch is imported lazily: the CLI sets
OMP_WAIT_POLICY before anything loads OpenMP.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

CGROUP_ROOT = Path("/sys/fs/cgroup")
_interop_set = False  # torch accepts set_num_interop_threads once per process


@dataclass(frozen=True)
class Cores:
    """The cores a process may use, and how many other processes keep busy."""

    available: int  # affinity, limited by a cgroup quota
    machine: int  # os.cpu_count()
    quota: float | None = None  # cgroup CPU quota in cores, None when unlimited
    load: float = 0.0  # 1-minute load average (runnable processes)


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen for this process, and what it was chosen from."""

    threads: int
    source: str  # "--threads", "config key `threads`" or "default"
    cores: Cores
    workers: int = 0
    processes: int = 1

    def describe(self) -> str:
        """The line printed at start: `threads: N (M cores available, ...)`."""
        parts = [f"{self.cores.available} cores available"]
        if self.cores.quota is not None:
            parts[0] += f" (cgroup quota {self.cores.quota:g})"
        parts.append(f"load {self.cores.load:.1f}")
        parts.append(f"{self.workers} data-loader workers")
        if self.processes > 1:
            parts.append(f"{self.processes} local processes")
        parts.append(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
        return f"threads: {self.threads} from {self.source} ({', '.join(parts)})"


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup CPU quota in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us`); None: no limit."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, _, period = v2.read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or 100000)
        for v1 in (root / "cpu", root / "cpu,cpuacct"):
            quota_file = v1 / "cpu.cfs_quota_us"
            if quota_file.is_file():
                quota_us = int(quota_file.read_text())
                period_us = int((v1 / "cpu.cfs_period_us").read_text())
                return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):  # unreadable or odd files: no limit we can know of
        return None
    return None


def available_cores(root: Path = CGROUP_ROOT) -> Cores:
    """The cores this process may run on: its affinity, limited by a cgroup quota."""
    machine = os.cpu_count() or 1
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = machine
    quota = cgroup_quota(root)
    # A quota of 1.5 cores still lets 2 threads run part of the time; round up, not down.
    cores = min(affinity, math.ceil(quota)) if quota is not None else affinity
    return Cores(available=max(1, cores), machine=machine, quota=quota, load=busy_load())


def busy_load(loadavg: Path = Path("/proc/loadavg")) -> float:
    """Processes keeping cores busy: the 1-minute load, or the runnable ones now if more.

    The 1-minute average lags (busy processes started 20 s ago count for a third); the
    runnable count is now, less this process itself."""
    try:
        fields = loadavg.read_text().split()
        runnable = int(fields[3].partition("/")[0]) - 1
        return max(float(fields[0]), float(runnable))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # not Unix
            return 0.0


def default_threads(cores: Cores, *, workers: int = 0, processes: int = 1) -> int:
    """Threads per process: this process's share of the cores, minus busy cores and workers."""
    share = max(1, cores.available // max(1, processes))
    # Data-loader workers run beside the main process (one thread each, torch's default).
    share -= min(workers, share - 1) if workers > 0 else 0
    # Cores other processes keep busy: more threads than free cores only adds waiting at
    # every barrier. The load counts our own processes too, but they have not started yet.
    free = cores.available - round(cores.load)
    return max(1, min(share, free))


def choose_threads(
    requested: int | None,
    *,
    source: str = "--threads",
    workers: int = 0,
    environ: Mapping[str, str] | None = None,
    cores: Cores | None = None,
) -> ThreadChoice:
    """`requested` when given, else OMP_NUM_THREADS when set, else the default policy."""
    env = os.environ if environ is None else environ
    processes = _positive(env.get("LOCAL_WORLD_SIZE")) or 1
    cores = cores or available_cores()
    if requested is not None:
        return ThreadChoice(requested, source, cores, workers, processes)
    omp = _positive(env.get("OMP_NUM_THREADS"))
    if omp is not None:  # the user's own choice for every OpenMP program
        return ThreadChoice(omp, "OMP_NUM_THREADS", cores, workers, processes)
    threads = default_threads(cores, workers=workers, processes=processes)
    return ThreadChoice(threads, "default", cores, workers, processes)


def _positive(text: str | None) -> int | None:
    """A positive whole number from an environment variable; None when unset or not one."""
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value > 0 else None


def prefer_passive_wait(environ: MutableMapping[str, str] | None = None) -> None:
    """Let idle OpenMP threads sleep instead of spin (unless the user chose a policy).

    OpenMP reads the variable when it loads, so this must run before torch is imported."""
    env = os.environ if environ is None else environ
    if not env.get("OMP_WAIT_POLICY"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"


def apply_threads(choice: ThreadChoice) -> int:
    """Set torch's intra-op threads (and inter-op threads, once); the count torch now uses."""
    import torch

    global _interop_set
    torch.set_num_threads(choice.threads)
    if not _interop_set:
        _interop_set = True
        # RuntimeError: inter-op work already ran in this process; torch keeps its own count.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(choice.threads)
    return torch.get_num_threads()


def configure_threads(
    requested: int | Literal["auto"] | None,
    config_threads: int | None = None,
    *,
    workers: int = 0,
) -> ThreadChoice:
    """Choose and apply: `--threads`, else the config key, else (with "auto") the default.

    None with no config key leaves torch as it is: a library call from Python does not
    change a process-wide setting it was not asked to (the commands pass "auto")."""
    if isinstance(requested, int):
        choice = choose_threads(requested, workers=workers)
    elif config_threads is not None:
        choice = choose_threads(config_threads, source="config key `threads`", workers=workers)
    elif requested == "auto":
        choice = choose_threads(None, workers=workers)
    else:
        import torch

        current = torch.get_num_threads()
        return choose_threads(current, source="the caller's torch setting", workers=workers)
    return replace(choice, threads=apply_threads(choice))  # what torch really uses

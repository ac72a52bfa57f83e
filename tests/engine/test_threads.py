"""Torch's thread count: the cores a process may use (affinity, cgroup quota), the default
that does not oversubscribe shared cores, and `--threads` / `threads:` reaching torch in a
real `detcli train` process."""

from __future__ import annotations

import os
import re

import pytest

from detcli.engine.threads import (
    Cores,
    available_cores,
    busy_load,
    cgroup_quota,
    choose_threads,
    default_threads,
    prefer_passive_wait,
)

from .engine_helpers import run_process

STEPS = ("--set", "runner={type: IterBasedRunner, max_iters: 1}", "--set", "evaluation=null")
STEPS += ("--set", "checkpoint_config.interval=1000", "--device", "cpu")


# -- cores available: cgroup files as a container shows them --------------------------------


def test_cgroup_v2_quota_in_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None


def test_cgroup_v1_quota_and_no_limit(tmp_path):
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path) == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota(tmp_path) is None
    assert cgroup_quota(tmp_path / "absent") is None


def test_garbled_cgroup_file_means_no_known_limit(tmp_path):
    (tmp_path / "cpu.max").write_text("lots\n")
    assert cgroup_quota(tmp_path) is None


def test_a_quota_below_the_affinity_limits_the_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7})
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    cores = available_cores(tmp_path)
    assert cores.available == 3 and cores.quota == 2.5  # 2.5 cores still run 3 threads part-time
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3})
    assert available_cores(tmp_path).available == 1  # pinned to one core (taskset)


def test_busy_load_counts_runnable_processes_now_when_the_average_lags(tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.40 0.20 0.10 3/412 9999\n")  # two spinners just started, and us
    assert busy_load(loadavg) == 2.0
    loadavg.write_text("5.20 4.00 3.00 1/412 9999\n")  # only us running this instant
    assert busy_load(loadavg) == 5.2


# -- the default ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available", "load", "workers", "processes", "expected"),
    [
        (8, 0.0, 0, 1, 8),  # an idle machine: every core
        (8, 0.0, 0, 4, 2),  # torchrun with 4 local processes: a quarter each
        (8, 0.0, 2, 1, 6),  # two data-loader workers keep two cores busy
        (2, 0.0, 4, 1, 1),  # more workers than cores: still one thread
        (2, 2.1, 0, 1, 1),  # two busy processes on 2 cores: one thread, never two
        (8, 3.0, 0, 1, 5),  # busy cores left out
        (4, 9.0, 0, 1, 1),  # overloaded: one thread
    ],
)
def test_default_shares_the_cores(available, load, workers, processes, expected):
    cores = Cores(available=available, machine=available, load=load)
    assert default_threads(cores, workers=workers, processes=processes) == expected


def test_choice_order_flag_then_omp_num_threads_then_default():
    cores = Cores(available=4, machine=4)
    env = {"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}
    flag = choose_threads(1, environ=env, cores=cores)
    assert (flag.threads, flag.source, flag.processes) == (1, "--threads", 2)
    omp = choose_threads(None, environ=env, cores=cores)
    assert (omp.threads, omp.source) == (3, "OMP_NUM_THREADS")
    default = choose_threads(None, environ={"LOCAL_WORLD_SIZE": "2"}, cores=cores)
    assert (default.threads, default.source) == (2, "default")
    line = default.describe()
    assert line.startswith("threads: 2 from default (4 cores available")
    assert "2 local processes" in line


def test_passive_wait_unless_the_user_chose():
    env: dict[str, str] = {}
    prefer_passive_wait(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    prefer_passive_wait(mine)
    assert mine == {"OMP_WAIT_POLICY": "ACTIVE"}


# -- a real `detcli train` process --------------------------------------------------------------


def _threads_line(out: str) -> re.Match[str]:
    match = re.search(r"threads: (\d+) from (.+?) \((\d+) cores available", out)
    assert match, out
    return match


def test_flag_and_config_key_reach_torch_and_the_flag_wins(tiny_config, tmp_path):
    config = tiny_config("threads: 2\n")
    by_key = run_process("train", str(config), "--work-dir", str(tmp_path / "a"), *STEPS)
    assert by_key.code == 0, by_key.err
    line = _threads_line(by_key.out)
    assert line.group(1, 2) == ("2", "config key `threads`")  # torch.get_num_threads() after
    by_flag = run_process(
        "train", str(config), "--work-dir", str(tmp_path / "b"), "--threads", "1", *STEPS
    )
    assert by_flag.code == 0, by_flag.err
    assert _threads_line(by_flag.out).group(1, 2) == ("1", "--threads")
    assert "threads: 1 from --threads" in (tmp_path / "b" / "train.log").read_text()


def test_default_is_printed_and_sets_passive_wait(tiny_config, tmp_path):
    env = {"OMP_NUM_THREADS": "", "OMP_WAIT_POLICY": ""}  # empty: as if unset
    proc = run_process(
        "train", str(tiny_config()), "--work-dir", str(tmp_path / "w"), *STEPS, env=env
    )
    assert proc.code == 0, proc.err
    line = _threads_line(proc.out)
    assert line.group(2) == "default"
    assert 1 <= int(line.group(1)) <= int(line.group(3))
    assert "OMP_WAIT_POLICY=PASSIVE" in proc.out


@pytest.mark.parametrize("value", ["0", "-2"])
def test_bad_flag_is_exit_2(tiny_config, tmp_path, value):
    proc = run_process("train", str(tiny_config()), "--threads", value, *STEPS)
    assert proc.code == 2 and "Traceback" not in proc.err
    assert "--threads" in proc.err and "x>=1" in proc.err


def test_bad_config_key_is_exit_2_naming_the_key(tiny_config, tmp_path):
    proc = run_process("train", str(tiny_config("threads: 0\n")), *STEPS)
    assert proc.code == 2 and "Traceback" not in proc.err
    message = " ".join(proc.err.split())  # rich wraps long lines
    assert "- threads (" in message and "a whole number of at least 1, got 0" in message


def test_eval_and_predict_take_the_flag_and_the_key(tiny_config, tiny_shapes, tmp_path):
    config = tiny_config("threads: 2\n")
    work = tmp_path / "w"
    trained = run_process("train", str(config), "--work-dir", str(work), "--threads", "1", *STEPS)
    assert trained.code == 0, trained.err
    checkpoint = str(work / "latest.pth")
    evaluated = run_process("eval", str(config), checkpoint, "--threads", "1", "--device", "cpu")
    assert evaluated.code == 0, evaluated.err
    assert _threads_line(evaluated.out).group(1, 2) == ("1", "--threads")
    images = str(tiny_shapes / "val")
    predicted = run_process("predict", str(config), checkpoint, images, "--device", "cpu")
    assert predicted.code == 0, predicted.err
    assert _threads_line(predicted.out).group(1, 2) == ("2", "config key `threads`")

"""`log_processor.window_size`: what the values of a log line average (mmengine's meaning)."""

from __future__ import annotations

import pytest

from detcli.engine import train
from detcli.engine.hooks.logger import LogWindow
from detcli.errors import ConfigError

from .engine_helpers import read_jsonl

RUN = """
runner: {{_delete_: true, type: IterBasedRunner, max_iters: 8}}
data: {{samples_per_gpu: 1}}
evaluation: null
checkpoint_config: null
log_config: {{interval: {interval}, hooks: [{{type: TextLoggerHook{extra}}}]}}
"""


def _train_records(config, work_dir) -> dict[int, dict]:
    train(config, work_dir=work_dir, device="cpu", deterministic=True)
    return {r["iter"]: r for r in read_jsonl(work_dir / "log.jsonl") if r["mode"] == "train"}


def test_logged_loss_is_the_mean_of_the_last_window_size_iterations(tiny_config, tmp_path):
    """interval 4, window 2: the lines at iterations 4 and 8 show the mean of 3-4 and 7-8;
    the default (no window) shows the mean of the whole interval, 1-4 and 5-8."""
    each = _train_records(
        tiny_config(RUN.format(interval=1, extra=""), "each.yaml"), tmp_path / "a"
    )
    windowed = _train_records(
        tiny_config(RUN.format(interval=4, extra=", window_size: 2"), "win.yaml"), tmp_path / "b"
    )
    interval = _train_records(
        tiny_config(RUN.format(interval=4, extra=""), "int.yaml"), tmp_path / "c"
    )
    assert sorted(windowed) == sorted(interval) == [4, 8]
    for end in (4, 8):
        last_two = [each[i]["loss"] for i in (end - 1, end)]
        whole = [each[i]["loss"] for i in range(end - 3, end + 1)]
        assert windowed[end]["loss"] == pytest.approx(sum(last_two) / 2, rel=1e-9)
        assert interval[end]["loss"] == pytest.approx(sum(whole) / 4, rel=1e-9)
        assert windowed[end]["lr"] == each[end]["lr"]  # lr is always the current one
    assert windowed[8]["loss"] != pytest.approx(interval[8]["loss"])


def _summaries(window: LogWindow, epochs: list[list[dict[str, float]]], every: int):
    lines, n = [], 0
    for epoch in epochs:
        window.new_epoch()
        for values in epoch:
            window.add(values)
            n += 1
            if n % every == 0:
                lines.append(window.summary())
    return lines


EPOCHS = [
    [{"loss": 1.0, "momentum": 8.0}, {"loss": 3.0, "grad_norm": 2.0, "momentum": 4.0}],
    [{"loss": 5.0}, {"loss": 7.0, "grad_norm": 4.0}],
]


def test_epoch_and_global_windows_and_current_values():
    epoch = _summaries(LogWindow("epoch"), EPOCHS, every=1)
    assert [line["loss"] for line in epoch] == [1.0, 2.0, 5.0, 6.0]  # restarts each epoch
    glob = _summaries(LogWindow("global"), EPOCHS, every=1)
    assert [line["loss"] for line in glob] == [1.0, 2.0, 3.0, 4.0]
    assert glob[-1]["grad_norm"] == 3.0  # averaged over the iterations that reported it
    assert glob[-1]["momentum"] == 4.0  # matches no loss|time|grad_norm: the latest value
    default = _summaries(LogWindow(None), EPOCHS, every=2)
    assert [line["loss"] for line in default] == [2.0, 6.0]
    assert default[0]["momentum"] == 6.0 and "momentum" not in default[1]


@pytest.mark.parametrize("bad", [0, -1, "epochs", 2.5, True])
def test_bad_window_size_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="window_size"):
        LogWindow(bad)

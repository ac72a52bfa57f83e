"""`detcli check` knows the engine's settings: schedulers, LR policies, optimizer wrappers, hooks."""

from __future__ import annotations

from conftest import REPO


def test_check_accepts_the_engine_keys_of_a_full_config(cli, write, tmp_path):
    write(
        "c.yaml",
        f"""
        _base_: {REPO}/configs/_base_/schedules/schedule_1x.yaml
        optimizer:
          paramwise_cfg: {{norm_decay_mult: 0.0, custom_keys: {{backbone: {{lr_mult: 0.1}}}}}}
        fp16: {{loss_scale: dynamic}}
        lr_config: {{_delete_: true, policy: CosineAnnealing, min_lr_ratio: 0.01, warmup: exp,
                    warmup_iters: 500}}  # _delete_: the base's `step` is not a cosine key
        """,
    )
    result = cli("check", str(tmp_path / "c.yaml"))
    assert result.code == 0, result.out


def test_check_reports_engine_mistakes_with_paths(cli, write, tmp_path):
    write(
        "c.yaml",
        """
        optim_wrapper:
          type: AmpOptimWraper
          optimizer: {type: SGD, lr: 0.01}
          clip_grad: {max_norm: big}
        param_scheduler:
          - {type: LinerLR, end: 500}
          - {type: MultiStepLR, milestone: [8, 11]}
        lr_config: {policy: cosin, warmup: linear}
        """,
    )
    out = " ".join(cli("check", str(tmp_path / "c.yaml")).out.split())
    assert "optim_wrapper.type" in out and "AmpOptimWrapper" in out
    assert "optim_wrapper.clip_grad.max_norm" in out
    assert "param_scheduler.0.type" in out and "Did you mean 'LinearLR'" in out
    assert "param_scheduler.1.milestone" in out and "Did you mean 'milestones'" in out
    assert "MultiStepLR needs argument 'milestones'" in out
    assert "lr_config.policy" in out and "CosineAnnealing" in out


def test_check_accepts_the_engine_test_config_and_checks_hook_arguments(
    cli, write, tmp_path, tiny_shapes
):
    from .engine_helpers import TINY_TRAIN

    clean = cli("check", str(TINY_TRAIN), "--set", f"data_root={tiny_shapes}")
    assert clean.code == 0, clean.out
    write(
        "c.yaml",
        f"""
        _base_: {TINY_TRAIN}
        data_root: {tiny_shapes}
        custom_hooks:
          - {{type: EarlyStoppingHook, patiense: 3}}
          - {{type: EMAHook, momentum: fast, priority: 49}}
        """,
    )
    out = " ".join(cli("check", str(tmp_path / "c.yaml")).out.split())
    assert "custom_hooks.0.patiense" in out and "Did you mean 'patience'" in out
    assert "custom_hooks.1.momentum" in out and "EMAHook expects float" in out

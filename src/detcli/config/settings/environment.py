"""Where and how a run runs: seed, devices, distributed backend, work dir, resuming.

2.x: `seed`, `dist_params: {backend}`, `cudnn_benchmark`, `resume_from`, `load_from`,
`work_dir`, `log_level`. 3.x: `randomness: {seed, deterministic}`, `env_cfg: {cudnn_benchmark,
mp_cfg, dist_cfg: {backend}}`, `resume: true` (continue from the work dir's latest checkpoint,
or from `load_from` when it is set, as mmengine does), `load_from`, `work_dir`, `log_level`.
detcli's own: `threads` (torch CPU threads per process; unset: engine/threads.py chooses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detcli.config.settings.reader import Key, Section, SettingsReader

MP_CFG = Section(
    {
        "mp_start_method": Key(str, "data-loader workers start the way torch starts them"),
        "opencv_num_threads": Key(int, "detcli decodes images without OpenCV"),
    }
)
DIST_CFG = Section(
    {
        "backend": Key(Literal["nccl", "gloo"] | None),
        "timeout": Key(int, "torch.distributed's default timeout applies"),
    }
)
ENV_CFG = Section(
    {
        "cudnn_benchmark": Key(bool),
        "mp_cfg": Key(dict[str, Any] | None),
        "dist_cfg": Key(dict[str, Any] | None),
    }
)
DIST_PARAMS = Section(
    {"backend": Key(Literal["nccl", "gloo"] | None), "port": Key(int, "torchrun picks the port")}
)
RANDOMNESS = Section(
    {
        "seed": Key(int | None),
        "deterministic": Key(bool),
        "diff_rank_seed": Key(bool, "every process is seeded with seed + its rank"),
    }
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class EnvSettings:
    """Seeds, devices and the distributed setup; paths of the work dir and checkpoints."""

    seed: int | None = None
    deterministic: bool = False
    cudnn_benchmark: bool = False
    dist_backend: str | None = None
    device: str | None = None
    work_dir: str | None = None
    load_from: str | None = None
    resume: str | None = None  # a checkpoint path, or "auto" (the work dir's latest)
    log_level: str = "INFO"
    find_unused_parameters: bool = False
    sync_bn: bool = False
    threads: int | None = None  # torch CPU threads per process; None: chosen from the cores


def read_env(reader: SettingsReader) -> EnvSettings:
    """The environment from either spelling; one setting in both is an error."""
    env = reader.section(("env_cfg",), ENV_CFG)
    reader.section(("env_cfg", "mp_cfg"), MP_CFG)
    dist = reader.section(("env_cfg", "dist_cfg"), DIST_CFG)
    reader.section(("dist_params",), DIST_PARAMS)
    randomness = reader.section(("randomness",), RANDOMNESS)
    for key in ("mp_start_method", "opencv_num_threads"):
        if reader.has((key,)):
            reader.note((key,), f"accepted, no effect in detcli: {MP_CFG.keys[key].no_effect}")
    seed = reader.one_of(("seed",), ("randomness", "seed"))
    backend = reader.one_of(("dist_params", "backend"), ("env_cfg", "dist_cfg", "backend"))
    benchmark = reader.one_of(("cudnn_benchmark",), ("env_cfg", "cudnn_benchmark"))
    resume = _resume(reader)
    level = reader.get(("log_level",), "INFO")
    if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
        reader.problem(("log_level",), f"log_level must be one of {', '.join(LOG_LEVELS)}.")
        level = "INFO"
    return EnvSettings(
        seed=seed[1] if seed else None,
        deterministic=bool(randomness.get("deterministic", False)),
        cudnn_benchmark=bool(benchmark[1]) if benchmark else bool(env.get("cudnn_benchmark")),
        dist_backend=backend[1] if backend else dist.get("backend"),
        device=reader.get(("device",), None),
        work_dir=reader.get(("work_dir",), None),
        load_from=reader.get(("load_from",), None),
        resume=resume,
        log_level=level.upper(),
        find_unused_parameters=bool(reader.get(("find_unused_parameters",), False)),
        sync_bn=bool(reader.get(("sync_bn",), False)),
        threads=_threads(reader),
    )


def _threads(reader: SettingsReader) -> int | None:
    """`threads: N`, a positive whole number; unset or null lets detcli choose."""
    threads = reader.get(("threads",), None)
    if isinstance(threads, bool) or not isinstance(threads, int):
        return None  # unset, or the wrong type (TOP_LEVEL's check reports that)
    if threads < 1:
        reader.problem(
            ("threads",),
            f"threads must be a whole number of at least 1, got {threads!r}; remove it to let "
            "detcli choose from the cores available (or pass --threads N).",
        )
        return None
    return threads


def _resume(reader: SettingsReader) -> str | None:
    """2.x `resume_from: PATH | auto`; 3.x `resume: true` (from `load_from`, else the latest)."""
    resume_from = reader.get(("resume_from",), None)
    resume = reader.get(("resume",), None)
    if resume is not None and not isinstance(resume, bool):
        reader.problem(("resume",), f"resume must be true or false, got {resume!r}.")
        return None
    if resume and resume_from is not None:
        reader.one_of(("resume_from",), ("resume",))
    if resume_from is not None:
        return str(resume_from)
    if resume:
        load_from = reader.get(("load_from",), None)
        return str(load_from) if load_from else "auto"
    return None

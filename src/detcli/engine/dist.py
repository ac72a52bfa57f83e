"""torch.distributed for the engine: set-up from torchrun's environment and a few collectives.

`torchrun --nproc_per_node N -m detcli train ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address; `init_distributed` joins the group (NCCL on CUDA, Gloo on CPU). Without
those variables everything runs as one process and the collectives are identities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from detcli.errors import TrainingError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    joined: bool = False  # in a process group (torchrun), even one of a single process

    @property
    def distributed(self) -> bool:
        """Train with DDP and distributed samplers (any run started by torchrun)."""
        return self.joined

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) describes a process group to join."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_distributed(device_type: str, backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes (once); return this process's rank info."""
    if not launched_by_torchrun():
        return DistInfo()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if backend is None or (backend == "nccl" and device_type != "cuda"):
            backend = "nccl" if device_type == "cuda" else "gloo"  # NCCL cannot run on CPU
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        try:
            # A generous timeout: evaluation and checkpoint writes happen between collectives.
            dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
        except Exception as exc:
            raise TrainingError(
                f"Could not join the distributed job (backend {backend}, rank {rank} of {world}): "
                f"{exc}. Launch with `torchrun --nproc_per_node N -m detcli train ...` or "
                "`detcli train --nproc N ...`."
            ) from None
    return DistInfo(rank, world, local_rank, joined=True)


def get_dist_info() -> DistInfo:
    """Rank and world size of the current process group (0 / 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(),
            dist.get_world_size(),
            int(os.environ.get("LOCAL_RANK", "0")),
            joined=True,
        )
    return DistInfo()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_across_ranks(flags: list[bool]) -> list[bool]:
    """Each flag OR-ed over all ranks (one small all-reduce), so every rank acts alike."""
    if not is_distributed():
        return flags
    t = torch.tensor([float(f) for f in flags], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average each value over ranks (the numbers a multi-GPU log should show)."""
    if not is_distributed() or not values:
        return values
    keys = list(values)  # every rank built `values` in the same order
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank: DDP syncs parameters, but
    each rank's running statistics drift with its own batches."""
    if not is_distributed():
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (just `[obj]` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

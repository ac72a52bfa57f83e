"""Where a detcli Faster (or Mask) R-CNN R50-FPN train step (or inference) spends its time.

torch.profiler over a few steps of the same set-up as model_speed.py; prints the top operators
by self time on the host and the device, and how often the host waited for the device
(cudaStreamSynchronize / device-to-host copies: each one stalls the Python side).

    python benchmarks/profile_model.py --device cuda [--infer] [--rows 30] [--model mask_rcnn]

On the CPU, batched NMS takes the CUDA code path (see `_take_cuda_nms_path`) so that op
counts stand in for kernel launches on a GPU; times are then not the CPU's own.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_speed import Runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="faster_rcnn", choices=["faster_rcnn", "mask_rcnn"])
    parser.add_argument("--infer", action="store_true", help="profile inference, not training")
    parser.add_argument("--ref", action="store_true", help="profile torchvision's model instead")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument(
        "--list-stage", default="", help="also print the top-level ops of one stage, in order"
    )
    args = parser.parse_args()
    args.amp, args.batch, args.size, args.num_classes, args.boxes = False, 2, 512, 10, 8
    if args.device == "cpu":
        _take_cuda_nms_path()
    run = Runner(args, args.model)
    _label_stages(run)
    step = {
        (False, False): run.train_ours,
        (False, True): run.train_ref,
        (True, False): run.infer_ours,
        (True, True): run.infer_ref,
    }[(args.infer, args.ref)]
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU]
    if run.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if run.device.type == "cuda":
        print(events.table(sort_by="self_cuda_time_total", row_limit=args.rows))
        syncs = {e.key: e.count // args.steps for e in events if "Synchronize" in e.key}
        copies = {e.key: e.count // args.steps for e in events if "Memcpy" in e.key}
        print("host waits per step:", syncs, "copies per step:", copies)
    # Device-agnostic launch proxies: top-level aten ops (each is at least one kernel on a
    # GPU) and reads of a device value into Python (each is a host wait on a GPU).
    top = [e for e in prof.events() if e.name.startswith("aten::") and _is_top_level(e)]
    print(f"top-level aten ops per step: {len(top) // args.steps}")
    reads = {e.key: e.count // args.steps for e in events if e.key in HOST_READS}
    print("device reads per step (host waits on a GPU):", reads)
    by_name = sorted(
        ((e.count // args.steps, e.key) for e in events if e.key.startswith("aten::")),
        reverse=True,
    )
    print("most frequent aten ops per step:", by_name[:15])
    stages: collections.Counter[str] = collections.Counter(_stage_of(e) for e in top)
    print(
        "top-level aten ops per step by stage:",
        {k: v // args.steps for k, v in sorted(stages.items())},
    )
    if args.list_stage:
        ops = [e.name for e in top if _stage_of(e) == args.list_stage]
        per_step = ops[: len(ops) // args.steps]
        print(f"{args.list_stage}: {len(per_step)} top-level ops per step:", " ".join(per_step))
    stage_reads: collections.Counter[str] = collections.Counter(
        _stage_of(e) for e in prof.events() if e.name in HOST_READS
    )
    print(
        "device reads per step by stage:",
        {k: v // args.steps for k, v in sorted(stage_reads.items())},
    )


# Ops that copy a device value to the host (a `cudaStreamSynchronize` each on a GPU).
HOST_READS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::item")


# Methods timed as one stage each (the rest of a step: backward, optimizer, glue).
STAGES = {
    "ours": (
        "extract_feat",
        "rpn_head.forward",
        "rpn_head.loss",
        "rpn_head.proposals",
        "roi_head.loss",
    ),
    "ref": ("backbone.forward", "rpn.forward", "roi_heads.forward"),
}


def _take_cuda_nms_path() -> None:
    """Both models' batched NMS as on CUDA: one offset-box NMS call, not a loop per group.

    torchvision loops over groups on the CPU above 4000 box coordinates (100,000 on CUDA),
    which would make CPU op counts a poor proxy for the GPU's.
    """
    import torchvision.ops.boxes as tv_boxes

    tv_boxes._batched_nms_vanilla = tv_boxes._batched_nms_coordinate_trick


def _label_stages(run: Any) -> None:
    """Wrap the stage methods of both models in `record_function` so ops can be attributed."""
    for side, model in (("ours", run.ours), ("ref", run.ref)):
        for path in STAGES[side]:
            *parents, name = path.split(".")
            owner = functools.reduce(getattr, parents, model)
            fn = getattr(owner, name)
            setattr(owner, name, _labelled(f"stage:{path}", fn))
    for opt in (run.opt_ours, run.opt_ref):
        opt.step = _labelled("stage:optimizer", opt.step)
    step = run._step

    def labelled_step(losses: Any, opt: Any, scaler: Any) -> None:
        with record_function("stage:backward+optimizer"):
            step(losses, opt, scaler)

    run._step = labelled_step


def _labelled(label: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(label):
            return fn(*args, **kwargs)

    return wrapper


def _stage_of(event: Any) -> str:
    """The innermost stage label around an event ("other" outside every stage)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("stage:"):
            return parent.name[len("stage:") :]
        parent = parent.cpu_parent
    return "other"


def _is_top_level(event: Any) -> bool:
    """An aten op not called from inside another aten op (what Python code asked for)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


if __name__ == "__main__":
    main()
